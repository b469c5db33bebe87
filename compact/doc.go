// Package compact merges LTX files with the ltx Compactor: files read from
// storage (Open, To), each verified as it streams so that a damaged one is
// named in the error (the Compactor's own errors name none), as the writer
// compacts levels and a restore rebuilds a snapshot; and files held in
// memory (Bytes), for fixtures.
package compact
