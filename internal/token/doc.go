// Package token formats and parses read-your-writes tokens: what a writer
// hands an application after a commit (writer.Replicator.SyncToken,
// ltx-writer's /sync endpoint) and what a reader waits for (the VFS's
// wait= parameter and PRAGMA ltx_wait). A token names a TXID of one
// replica and the commit time that replica recorded for it, so that a
// reader can tell a token of its replica from one of another.
package token
