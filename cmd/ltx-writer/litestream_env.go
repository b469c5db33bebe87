package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// expandEnv expands $VAR and ${VAR} in the text of a Litestream config as
// Litestream v0.5 does: os.Expand over the whole file before it is parsed
// (comments and keys included), with $PID set to the process ID (v0.5.8;
// v0.5.0 called os.ExpandEnv). Where Litestream puts an empty string for
// a variable that is not set, this is an error naming the variable and
// its line, since an empty bucket, path or secret fails later with a
// message that no longer says why; a variable set to "" is fine. Unset
// variables in comments are not errors: they change nothing.
func expandEnv(text string) (string, error) {
	for i, line := range strings.Split(text, "\n") {
		code := line[:commentStart(line)]
		var unset []string
		os.Expand(code, func(name string) string {
			if _, ok := lookupEnv(name); !ok {
				unset = append(unset, name)
			}
			return ""
		})
		if len(unset) > 0 {
			return "", unsetVarError(i+1, code, unset[0])
		}
	}
	return os.Expand(text, func(name string) string {
		v, _ := lookupEnv(name)
		return v
	}), nil
}

func lookupEnv(name string) (string, bool) {
	if name == "PID" {
		return strconv.Itoa(os.Getpid()), true
	}
	return os.LookupEnv(name)
}

// unsetVarError names the variable and the key of its line. On the line of
// a secret the name is given only when the whole value is the reference:
// otherwise the "$..." may be part of a literal secret, which an error
// must never show.
func unsetVarError(line int, code, name string) error {
	key, value, _ := strings.Cut(code, ":")
	key = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(key), "- "))
	if strings.ContainsAny(key, " \t$\"'{}[]") || key == "" {
		key = "" // not a plain key: the line is something else
	}
	value = strings.Trim(strings.TrimSpace(value), `"'`)
	ref := "$" + name
	if strings.Contains(code, "${"+name+"}") {
		ref = "${" + name + "}"
	}
	where := fmt.Sprintf("line %d", line)
	if key != "" {
		where += " (" + key + ")"
	}
	if secretKeys[key] && value != ref {
		return fmt.Errorf("%s: refers to an environment variable that is not set (Litestream would put an empty string there); set it, or give -no-expand-env if the $ is part of the value", where)
	}
	return fmt.Errorf("%s: environment variable %s is not set (Litestream would put an empty string there); set it, or give -no-expand-env to read the file as written", where, ref)
}

// secretKeys are the keys of Litestream's config whose values are secrets.
var secretKeys = map[string]bool{
	"access-key-id": true, "secret-access-key": true, "sse-customer-key": true,
	"account-key": true, "sas-token": true, "password": true, "webdav-password": true,
	"jwt": true, "seed": true, "nkey": true, "token": true,
}

// commentStart is where a YAML comment starts on line (len(line) if
// none): at a # that begins the line or follows a blank, outside a quoted
// scalar. A # inside a block scalar is taken for a comment too; expanding
// there still happens, only an unset variable goes unreported.
func commentStart(line string) int {
	var quote byte
	prev := byte(' ') // the last non-blank byte before i, ' ' at the start
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '"' && c == '\\':
			i++ // an escaped character, \" included
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case (c == '"' || c == '\'') && strings.IndexByte(" :-[{,", prev) >= 0:
			quote = c // a quote opens a scalar only where a scalar starts
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return i
		}
		if c != ' ' && c != '\t' {
			prev = c
		}
	}
	return len(line)
}
