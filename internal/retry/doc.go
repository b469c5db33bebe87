// Package retry runs an operation on object storage again, a few times,
// when it fails in a way that may pass.
package retry
