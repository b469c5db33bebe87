// Package bytesize parses the byte sizes users give: the VFS's pagecache=,
// diskcache_size= and max_bytes= parameters and the bench harness's flags.
// Errors quote the input through storage.Shown (it may be a URL pasted by
// mistake).
package bytesize
