package files

import (
	"bytes"
	"unicode/utf8"
)

// SniffLen is how many leading bytes of a file Sniff looks at.
const SniffLen = 512

// kind is a content type the Service recognises and the extension its
// files get.
type kind struct {
	contentType string
	ext         string
}

var (
	kindBinary = kind{"application/octet-stream", ".bin"}
	kindText   = kind{"text/plain; charset=utf-8", ".txt"}
	kindHTML   = kind{"text/html; charset=utf-8", ".html"}
	kindXML    = kind{"text/xml; charset=utf-8", ".xml"}
	kindSVG    = kind{"image/svg+xml", ".svg"}
)

// magic is a signature at the start of a file.
type magic struct {
	prefix string
	kind   kind
}

// magics are the signatures of the media an app sends, checked in order.
var magics = []magic{
	{"\x89PNG\r\n\x1a\n", kind{"image/png", ".png"}},
	{"\xff\xd8\xff", kind{"image/jpeg", ".jpg"}},
	{"GIF87a", kind{"image/gif", ".gif"}},
	{"GIF89a", kind{"image/gif", ".gif"}},
	{"BM", kind{"image/bmp", ".bmp"}},
	{"OggS", kind{"audio/ogg", ".ogg"}},
	{"#!AMR\n", kind{"audio/amr", ".amr"}},
	{"ID3", kind{"audio/mpeg", ".mp3"}},
	{"fLaC", kind{"audio/flac", ".flac"}},
	{"%PDF-", kind{"application/pdf", ".pdf"}},
	{"PK\x03\x04", kind{"application/zip", ".zip"}},
	{"\x1f\x8b", kind{"application/gzip", ".gz"}},
	{"\x1a\x45\xdf\xa3", kind{"video/webm", ".webm"}},
}

// Sniff returns the content type of a file that starts with head (its
// first SniffLen bytes, or all of it if shorter) and the extension its
// URL ends with. Only the content decides: a client's file name or type
// never does, so an upload cannot choose to be served as something it is
// not. Unknown binary content is application/octet-stream (".bin"); text
// that looks like markup is text/html, text/xml or image/svg+xml, which
// downloads serve as attachments.
func Sniff(head []byte) (contentType, ext string) {
	k := sniff(head)
	return k.contentType, k.ext
}

func sniff(b []byte) kind {
	if len(b) > SniffLen {
		b = b[:SniffLen]
	}
	for _, m := range magics {
		if bytes.HasPrefix(b, []byte(m.prefix)) {
			return m.kind
		}
	}
	if len(b) >= 12 {
		switch {
		case string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
			return kind{"image/webp", ".webp"}
		case string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE":
			return kind{"audio/wav", ".wav"}
		case string(b[4:8]) == "ftyp":
			return sniffISO(string(b[8:12]))
		}
	}
	if len(b) >= 2 && b[0] == 0xff {
		switch b[1] & 0xf6 {
		case 0xf0: // ADTS: a sync word with layer 0
			return kind{"audio/aac", ".aac"}
		case 0xf2: // MPEG audio layer III
			return kind{"audio/mpeg", ".mp3"}
		}
	}
	return sniffText(b)
}

// sniffISO tells the kinds of ISO base media files (MP4, QuickTime,
// HEIF) apart by their major brand.
func sniffISO(brand string) kind {
	switch brand {
	case "heic", "heix", "heim", "heis", "hevc", "hevx":
		return kind{"image/heic", ".heic"}
	case "mif1", "msf1":
		return kind{"image/heif", ".heif"}
	case "avif", "avis":
		return kind{"image/avif", ".avif"}
	case "qt  ":
		return kind{"video/quicktime", ".mov"}
	case "M4A ", "M4B ":
		return kind{"audio/mp4", ".m4a"}
	case "3gp4", "3gp5", "3gp6", "3gg6":
		return kind{"video/3gpp", ".3gp"}
	}
	return kind{"video/mp4", ".mp4"}
}

// sniffText classifies content that matched no signature: UTF-8 text
// without control characters other than white space is text, and text
// that starts with markup is HTML, XML or SVG; anything else is binary.
func sniffText(b []byte) kind {
	if len(b) == 0 {
		return kindBinary
	}
	// A multi-byte character cut at the end of the sniffed bytes is
	// still text.
	for i := 0; i < 3 && len(b) > 0 && !utf8.Valid(b); i++ {
		b = b[:len(b)-1]
	}
	if !utf8.Valid(b) {
		return kindBinary
	}
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' || c == 0x7f {
			return kindBinary
		}
	}
	t := bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\n\r\f")
	if len(t) == 0 || t[0] != '<' {
		return kindText
	}
	lower := bytes.ToLower(t)
	switch {
	case bytes.Contains(lower, []byte("<svg")):
		return kindSVG
	case bytes.HasPrefix(lower, []byte("<?xml")):
		return kindXML
	}
	// Anything else that starts with a tag is taken for HTML, the one a
	// browser would run.
	return kindHTML
}
