package im

import "fmt"

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

// ValidateName returns an error wrapping ErrInvalidArgument, naming the
// field what and the character, if s holds a bidirectional control (U+061C,
// U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069), a zero-width
// character (U+200B to U+200D, U+2060, U+FEFF) or a C1 control (U+0080 to
// U+009F). Ids, group names and face URLs are checked with it by
// ValidateID and ValidateGroup; a Store or an account system can use it for
// other names, such as nicknames.
func ValidateName(what, s string) error {
	for _, r := range s {
		if kind := hiddenRune(r); kind != "" {
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "%s must not contain the %s %U", what, kind, r)
		}
	}
	return nil
}

// nameError is the error for a name s that printable refused: the hidden
// character it holds if any (the more useful message), else the general
// rule given by format and args.
func nameError(what, s, format string, args ...any) error {
	if err := ValidateName(what, s); err != nil {
		return err
	}
	return errorf(CodeInvalidArgument, ErrInvalidArgument, "%s", fmt.Sprintf(format, args...))
}
