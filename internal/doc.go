// Package internal holds helpers shared by the packages of this module, each
// in a subpackage named for what it does.
package internal
