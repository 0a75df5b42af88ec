package conn

import (
	"net/url"
	"strings"
)

// redactedPassword stands in for a password in every URL warren shows.
const redactedPassword = "***"

// RedactURL returns rawURL with its password replaced by "***", in the form
// amqp://user:***@host:port/vhost. It never returns a password, whatever the
// input.
//
// A well-formed URL (a scheme, "://", and no "@" after the host) keeps its
// user name and everything else. Any other text is redacted loosely: the
// leading scheme-like part ("amqp://", "amqp//", "amqp:") is kept, and
// everything from there up to the last "@" is replaced by "***", so that
// "amqp//guest:s3cret@host" shows as "amqp//***@host". Where the input is
// malformed warren cannot tell the password from the user name or the
// host, so it hides all of them but what follows the last "@"; text with no
// "@" at all keeps only its scheme-like part ("amqp://guest:s3cret:host"
// shows as "amqp://***"), because a missing "@" is as likely a typo inside
// the userinfo as anywhere else.
func RedactURL(rawURL string) string {
	if u, ok := wellFormed(rawURL); ok {
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), redactedPassword)
			}
		}
		// url.URL.String escapes "*" in the password; undo that for readability.
		return strings.Replace(u.String(), url.QueryEscape(redactedPassword), redactedPassword, 1)
	}
	return redactLoosely(rawURL)
}

// wellFormed parses rawURL and reports whether its userinfo is certainly
// where net/url found it: the text starts with a scheme and "://", and no
// "@" follows the authority. Otherwise a password with a raw "/", "?" or
// "#" in it ("amqp://u:12/ss@host") would parse as a host and port followed
// by a path holding the rest of the password.
func wellFormed(rawURL string) (*url.URL, bool) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return nil, false
	}
	rest, found := strings.CutPrefix(rawURL[len(u.Scheme):], "://")
	if !found {
		return nil, false
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 && strings.Contains(rest[end:], "@") {
		return nil, false
	}
	return u, true
}

// redactLoosely keeps the scheme-like start of s and what follows its last
// "@", and replaces everything between them with "***".
func redactLoosely(s string) string {
	start := schemeLikeEnd(s)
	at := strings.LastIndexByte(s[start:], '@')
	if at < 0 {
		return s[:start] + redactedPassword
	}
	return s[:start] + redactedPassword + s[start+at:]
}

// schemeLikeEnd returns the length of the scheme-like start of s: a scheme
// name (a letter, then letters, digits, "+", "-" or "."), then an optional
// ":" and an optional "//". It is 0 when s does not start with a letter, and
// never includes a scheme name followed by neither ":" nor "//", which could
// be a user name.
func schemeLikeEnd(s string) int {
	i := 0
	for i < len(s) && isSchemeByte(s[i], i == 0) {
		i++
	}
	if i == 0 {
		return 0
	}
	end := 0
	if strings.HasPrefix(s[i:], ":") {
		i++
		end = i
	}
	if strings.HasPrefix(s[i:], "//") {
		end = i + 2
	}
	return end
}

func isSchemeByte(c byte, first bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		return true
	case first:
		return false
	case '0' <= c && c <= '9', c == '+', c == '-', c == '.':
		return true
	}
	return false
}
