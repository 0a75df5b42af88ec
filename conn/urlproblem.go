package conn

import (
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// urlProblem checks rawURL as amqp.ParseURI will when dialing, and says
// what is wrong with it in words that name the mistake but never quote the
// URL: net/url and strconv put the text they choke on into their errors, and
// that text can be a password ("amqp://guest:s3cret/x@host" fails on the
// "port" s3cret). It returns "" for a URL that is fine.
func urlProblem(rawURL string) string {
	if rawURL == "" {
		return "empty URL"
	}
	if p := schemeProblem(rawURL); p != "" {
		return p
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return parseProblem(err)
	}
	if _, ok := wellFormed(rawURL); !ok {
		// ParseURI would take what follows the "/" for the vhost and dial
		// a host named after the user; a typo as likely as a real vhost
		// with a raw "@".
		return `"@" after the host: percent-encode "/", "?" and "#" in a password, and "@" in a vhost (as %40)`
	}
	if _, err := amqp.ParseURI(rawURL); err != nil {
		var numErr *strconv.NumError
		switch {
		case errors.As(err, &numErr):
			return "port must be a number from 1 to 65535"
		case strings.Contains(err.Error(), "whitespace"):
			return "URL must not contain spaces"
		}
		// The query parameter errors read "heartbeat is not an uint16:
		// strconv.ParseUint: parsing "x": invalid syntax".
		msg, _, _ := strings.Cut(err.Error(), ": strconv.")
		return "query parameter " + unquote(msg)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "port must be a number from 1 to 65535"
		}
	}
	return ""
}

// schemeProblem says what is wrong with the start of rawURL, which must be
// "amqp://" or "amqps://".
func schemeProblem(rawURL string) string {
	scheme, _, found := strings.Cut(rawURL, "://")
	if found && (strings.EqualFold(scheme, "amqp") || strings.EqualFold(scheme, "amqps")) {
		return ""
	}
	lower := strings.ToLower(rawURL)
	switch {
	case strings.HasPrefix(lower, "amqp//"), strings.HasPrefix(lower, "amqps//"):
		return `missing ":" after the scheme: write amqp:// or amqps://`
	case strings.HasPrefix(lower, "amqp:"), strings.HasPrefix(lower, "amqps:"):
		return `missing "//" after the scheme: write amqp:// or amqps://`
	case found && isScheme(scheme):
		// A scheme name cannot hold a password: those stop at ":".
		return "scheme " + strconv.Quote(scheme) + " is not amqp or amqps: write amqp:// or amqps://"
	}
	return "URL must start with amqp:// or amqps://"
}

// isScheme reports whether s is a scheme name.
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isSchemeByte(s[i], i == 0) {
			return false
		}
	}
	return s != ""
}

// parseProblem describes a net/url parse error without the text it quotes.
func parseProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := strings.TrimPrefix(unquote(err.Error()), "net/url: ")
	if strings.Contains(msg, "invalid userinfo") {
		return `invalid user name or password: percent-encode "@", ":", "/", "?" and "#" in them`
	}
	return msg
}

// quoted matches a Go-quoted string, as %q prints it.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// unquote removes every quoted string from msg, with the space before it.
func unquote(msg string) string {
	return strings.Join(strings.Fields(quoted.ReplaceAllString(msg, "")), " ")
}
