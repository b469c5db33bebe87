// Package syncbuf is a bytes.Buffer that goroutines may write and read at
// once: a child process's output read while it runs, a logger's lines read
// by the test that watches them.
package syncbuf
