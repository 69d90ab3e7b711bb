package reading

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// strictOptions is how every untrusted JSON input is read: the JSON v2
// decoder's defaults refuse duplicate object keys and invalid UTF-8 (also
// lone surrogate escapes such as "\ud800") and match keys exactly (case
// sensitive); unknown keys are refused too.
//
// Value spellings stay those encoding/json accepted, because each has one
// meaning: RFC 3339 times as time.Parse reads them, []byte as standard base64
// (line breaks ignored) or as an array of numbers.
var strictOptions = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
	jsonv1.ParseTimeWithLooseRFC3339(true),
	jsonv1.ParseBytesWithLooseRFC4648(true),
	jsonv1.FormatBytesWithLegacySemantics(true),
)

// Problem says what kind of fault DecodeStrict found.
type Problem string

// Problems DecodeStrict reports.
const (
	ProblemDuplicateKey Problem = "duplicate_key" // an object has the same key twice
	ProblemUnknownKey   Problem = "unknown_key"   // a key that is not a field name (including a case variant of one)
	ProblemInvalidUTF8  Problem = "invalid_utf8"  // bytes that are not UTF-8
	ProblemTrailingData Problem = "trailing_data" // more than one JSON value
	ProblemInvalid      Problem = "invalid_json"  // any other syntax or type error
)

// DecodeError is why DecodeStrict refused its input.
type DecodeError struct {
	Problem Problem
	// Key is the offending object key (duplicate or unknown keys).
	Key string
	// KnownAs is the field name that Key differs from only by letter case.
	KnownAs string
	// At is the JSON pointer (RFC 6901) of the object holding Key, or of
	// the value at fault; "" is the top level.
	At string
	// InString says that invalid UTF-8 is inside a string (a key or a
	// value), rather than between tokens.
	InString bool
	// Offset is the byte offset of the fault, when known.
	Offset int64
	// Err is the decoder's own error.
	Err error
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	switch e.Problem {
	case ProblemDuplicateKey:
		fmt.Fprintf(&b, "duplicate key %s", quoteKey(e.Key))
	case ProblemUnknownKey:
		// "field" keeps the wording encoding/json used for unknown keys.
		fmt.Fprintf(&b, "unknown field %s", quoteKey(e.Key))
	case ProblemInvalidUTF8:
		b.WriteString("invalid UTF-8")
		if e.InString {
			b.WriteString(" in a string")
		}
	case ProblemTrailingData:
		return "trailing data after the JSON value"
	default:
		if e.Err == nil {
			return "invalid JSON"
		}
		return strings.TrimPrefix(strings.TrimPrefix(e.Err.Error(), "json: "), "jsontext: ")
	}
	if e.At != "" {
		fmt.Fprintf(&b, " at %s", quoteKey(e.At))
	}
	if e.KnownAs != "" {
		fmt.Fprintf(&b, " (keys are case-sensitive: the field is %q)", e.KnownAs)
	}
	if e.Problem == ProblemInvalidUTF8 {
		fmt.Fprintf(&b, " (byte %d)", e.Offset)
	}
	return b.String()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// quoteKey quotes a key for an error message, shortened to what a person
// reads.
func quoteKey(k string) string {
	const limit = 64
	if len(k) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(k[cut]) {
			cut--
		}
		return strconv.Quote(k[:cut]) + "…"
	}
	return strconv.Quote(k)
}

// DecodeStrict decodes one JSON value into v so that the bytes have one
// meaning for every JSON parser: duplicate keys, keys that are not exactly
// a field name (case variants included), unknown keys, invalid UTF-8 and
// trailing data are refused with a *DecodeError.
//
// Use it for every JSON input that comes from outside: device-signed
// payloads and envelopes, acks and transaction arguments.
func DecodeStrict(data []byte, v any) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data), strictOptions)
	if err := jsonv2.UnmarshalDecode(dec, v, strictOptions); err != nil {
		return classify(data, err)
	}
	if _, err := dec.ReadValue(); !errors.Is(err, io.EOF) {
		return &DecodeError{Problem: ProblemTrailingData, Offset: dec.InputOffset(), Err: err}
	}
	return nil
}

// classify turns the decoder's error into a DecodeError.
func classify(data []byte, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &DecodeError{Problem: ProblemInvalid, Offset: int64(len(data)), Err: io.ErrUnexpectedEOF}
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return &DecodeError{Problem: ProblemDuplicateKey, Key: syn.JSONPointer.LastToken(),
				At: string(syn.JSONPointer.Parent()), Offset: syn.ByteOffset, Err: err}
		case invalidUTF8At(data, syn.ByteOffset):
			return &DecodeError{Problem: ProblemInvalidUTF8, InString: errInvalidUTF8InString != nil && errors.Is(syn.Err, errInvalidUTF8InString),
				At: string(syn.JSONPointer), Offset: syn.ByteOffset, Err: err}
		}
		return &DecodeError{Problem: ProblemInvalid, At: string(syn.JSONPointer), Offset: syn.ByteOffset, Err: err}
	}
	var sem *jsonv2.SemanticError
	if errors.As(err, &sem) {
		if errors.Is(sem.Err, jsonv2.ErrUnknownName) {
			key := sem.JSONPointer.LastToken()
			return &DecodeError{Problem: ProblemUnknownKey, Key: key, KnownAs: caseVariantOf(sem.GoType, key),
				At: string(sem.JSONPointer.Parent()), Offset: sem.ByteOffset, Err: err}
		}
		return &DecodeError{Problem: ProblemInvalid, At: string(sem.JSONPointer), Offset: sem.ByteOffset, Err: err}
	}
	return &DecodeError{Problem: ProblemInvalid, Err: err}
}

// errInvalidUTF8InString is the decoder's error for invalid UTF-8 inside a
// string. The decoder does not export it, so it is taken from decoding one
// such string.
var errInvalidUTF8InString = func() error {
	var s string
	var syn *jsontext.SyntacticError
	if errors.As(jsonv2.Unmarshal([]byte("\"\xff\""), &s), &syn) {
		return syn.Err
	}
	return nil
}()

// invalidUTF8At reports whether the decoder stopped at bytes that are not
// UTF-8.
func invalidUTF8At(data []byte, offset int64) bool {
	if offset < 0 || offset >= int64(len(data)) {
		return false
	}
	r, size := utf8.DecodeRune(data[offset:])
	return r == utf8.RuneError && size <= 1
}

// caseVariantOf returns the JSON field name of struct type t that key
// matches when letter case is ignored, or "".
func caseVariantOf(t reflect.Type, key string) string {
	for _, name := range jsonFieldNames(t) {
		if strings.EqualFold(name, key) {
			return name
		}
	}
	return ""
}

// jsonFieldNames lists the JSON names of a struct type's fields, following
// encoding/json's tag rules (embedded structs without a name are inlined).
func jsonFieldNames(t reflect.Type) []string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, hasTag := f.Tag.Lookup("json")
		name, _, _ := strings.Cut(tag, ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			names = append(names, jsonFieldNames(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if !hasTag || name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}
