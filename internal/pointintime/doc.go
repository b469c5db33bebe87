// Package pointintime parses the ways a user names a point in a replica's
// history: a TXID (decimal, or the 16 hex digits of LTX file names) and a
// time (RFC 3339, or relative to now like -5m). The VFS's txid= and time=
// parameters and PRAGMAs, and the CLI's -txid and -time flags, share it so
// that they accept exactly the same spellings.
package pointintime
