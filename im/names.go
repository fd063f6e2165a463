package im

import (
	"fmt"
	"unicode/utf8"
)

// hiddenRune returns the kind of r if names must not hold it, or "". These
// characters are invisible or reorder the text around them, so a name
// holding one can pass for another: U+202E makes "evil\u202Egnp.exe" read
// "evilexe.png", and a zero-width space makes a second "alice" that looks
// like the first. C1 controls (U+0080 to U+009F) have no glyph and some
// terminals act on them.
func hiddenRune(r rune) string {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return "C1 control character"
	case r == 0x061c, r == 0x200e, r == 0x200f,
		r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return "bidirectional control character"
	case r >= 0x200b && r <= 0x200d, r == 0x2060, r == 0xfeff:
		return "zero-width character"
	}
	return ""
}

// joiner reports whether r is U+200C ZERO WIDTH NON-JOINER or U+200D ZERO
// WIDTH JOINER. Display names may hold them: emoji sequences (👩‍💻) and
// scripts such as Persian need them. Ids may not.
func joiner(r rune) bool { return r == 0x200c || r == 0x200d }

// ValidateName returns an error wrapping ErrInvalidArgument, naming the
// field what and the character, if the display name s holds a
// bidirectional control (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066
// to U+2069), a zero-width character other than the joiners (U+200B,
// U+2060, U+FEFF) or a C1 control (U+0080 to U+009F). ValidateGroup checks
// group names with it; a Store or an account system can use it for other
// display names, such as nicknames. Ids and face URLs are stricter: they
// refuse the joiners U+200C and U+200D too (ValidateID).
func ValidateName(what, s string) error {
	for _, r := range s {
		if kind := hiddenRune(r); kind != "" && !joiner(r) {
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "%s must not contain the %s %U", what, kind, r)
		}
	}
	return nil
}

// nameError is the error for a name s that printable refused: the hidden
// character it holds if any (the more useful message), else the general
// rule given by format and args.
func nameError(what, s, format string, args ...any) error {
	for _, r := range s {
		if kind := hiddenRune(r); kind != "" {
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "%s must not contain the %s %U", what, kind, r)
		}
	}
	return errorf(CodeInvalidArgument, ErrInvalidArgument, "%s", fmt.Sprintf(format, args...))
}

// displayName reports whether s is 1 to max bytes of printable UTF-8 that
// ValidateName accepts: printable, but with the joiners allowed.
func displayName(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (hiddenRune(r) != "" && !joiner(r)) {
			return false
		}
	}
	return true
}
