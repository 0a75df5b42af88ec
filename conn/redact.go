package conn

import (
	"net/url"
	"strings"
)

// redactedPassword stands in for a password in every URL warren shows.
const redactedPassword = "***"

// RedactURL returns rawURL with its password replaced by "***", in the form
// amqp://user:***@host:port/vhost. It never returns the password: a URL that
// cannot be parsed is reduced to its scheme, so that a malformed URL holding
// a secret cannot leak through a log line or an error.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Opaque != "" {
		scheme, _, found := strings.Cut(rawURL, "://")
		if !found || strings.ContainsAny(scheme, "@:/") {
			return "<unparseable URL>"
		}
		return scheme + "://<unparseable URL>"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redactedPassword)
		}
	}
	// url.URL.String escapes "*" in the password; undo that for readability.
	return strings.Replace(u.String(), url.QueryEscape(redactedPassword), redactedPassword, 1)
}
