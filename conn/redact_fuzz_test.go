package conn

import (
	"net/url"
	"strings"
	"testing"
)

// The fuzz targets build a URL around a password, in the shape a person
// types one, with anything before, around and after it:
//
//	prefix + user + ":" + password + "@" + suffix
//
// and check that the password never comes out. The seed corpus is in
// testdata/fuzz; plain go test runs it.

// fixedText is every text the redaction and URL checks write themselves. A
// password found in it is not a leak ("host" is in `"@" after the host`),
// so such passwords are skipped.
const fixedText = redactedPassword + `warren: invalid options: URLs[0] EventBuffer must not be negative, got -1
empty URL missing ":" after the scheme: write amqp:// or amqps:// missing "//" after the scheme
is not amqp or amqps URL must start with amqp:// or amqps://
"@" after the host: percent-encode "/", "?" and "#" in a password, and "@" in a vhost (as %40)
port must be a number from 1 to 65535 URL must not contain spaces query parameter
invalid user name or password: percent-encode "@", ":", "/", "?" and "#" in them
heartbeat is not an uint16 connection_timeout is not an integer channel_max is not an uint16
invalid URL escape invalid port after host invalid character in host name
invalid control character in URL missing ']' in host invalid IP-literal
missing protocol scheme first path segment in URL cannot contain colon`

// passwordForms returns the forms of the password in in that must not come
// out, or nil when in holds no password worth the name: an empty or short
// one, one that also appears elsewhere in the URL (as a host or a scheme,
// plainly or percent-encoded), or one that is part of warren's own text.
func passwordForms(in, password string) []string {
	if len(password) < 4 || strings.Contains(fixedText, password) {
		return nil
	}
	forms := []string{password}
	if dec, err := url.PathUnescape(password); err == nil && dec != password && len(dec) >= 4 {
		forms = append(forms, dec)
	}
	decoded := lenientUnescape(in)
	for _, f := range forms {
		if strings.Count(in, f) > 1 || strings.Count(decoded, f) > 1 || strings.Contains(fixedText, f) {
			return nil
		}
	}
	return forms
}

// lenientUnescape decodes every valid %XX of s and leaves the rest alone.
func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if dec, err := url.PathUnescape(s[i : i+3]); err == nil {
				b.WriteString(dec)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// seedURLs are built into the corpus by f.Add as well as being on disk, so
// the shapes stay covered if testdata is pruned.
var seedURLs = [][4]string{
	{"amqp//", "guest", "s3cret", "127.0.0.1"},
	{"amqp:", "guest", "s3cret", "127.0.0.1"},
	{"amqps://", "app", "p@ss/w#rd?x", "rabbit-1:5671/prod"},
}

func addSeeds(f *testing.F) {
	for _, s := range seedURLs {
		f.Add(s[0], s[1], s[2], s[3])
	}
}

func FuzzRedactURL(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, prefix, user, password, suffix string) {
		in := prefix + user + ":" + password + "@" + suffix
		got := RedactURL(in)
		for _, secret := range passwordForms(in, password) {
			if strings.Contains(got, secret) {
				t.Fatalf("RedactURL(%q) = %q shows the password %q", in, got, secret)
			}
		}
	})
}

func FuzzNewRedacts(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, prefix, user, password, suffix string) {
		in := prefix + user + ":" + password + "@" + suffix
		// The bad EventBuffer makes New fail whatever the URL, so that it
		// never dials what the fuzzer makes up.
		_, err := New(Options{URLs: []string{in}, EventBuffer: -1})
		if err == nil {
			t.Fatalf("New accepted EventBuffer -1")
		}
		for _, secret := range passwordForms(in, password) {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("New(%q) error %q shows the password %q", in, err, secret)
			}
		}
	})
}
