// Package ctxtime holds waits that end early when their context does.
package ctxtime
