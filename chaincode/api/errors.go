package api

import (
	"errors"
	"strings"
)

// Code classifies a chaincode error so that clients can react to it (a hub
// counts rejects by code; a CLI suggests a fix) without parsing prose.
type Code string

// Error codes. A chaincode error message is "<CODE>: <message>".
const (
	CodeInvalidArgument    Code = "INVALID_ARGUMENT"
	CodeNotFound           Code = "NOT_FOUND"
	CodeAlreadyExists      Code = "ALREADY_EXISTS"
	CodeAccessDenied       Code = "ACCESS_DENIED"
	CodeBadSignature       Code = "BAD_SIGNATURE"
	CodeReplay             Code = "REPLAY"
	CodeDeviceInactive     Code = "DEVICE_INACTIVE"
	CodeFailedPrecondition Code = "FAILED_PRECONDITION"
	CodeInternal           Code = "INTERNAL"
)

var knownCodes = []Code{
	CodeInvalidArgument, CodeNotFound, CodeAlreadyExists, CodeAccessDenied, CodeBadSignature,
	CodeReplay, CodeDeviceInactive, CodeFailedPrecondition, CodeInternal,
}

// Error is a classified chaincode error.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf builds a classified error.
func Errorf(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// ParseError finds a classified error inside a message, e.g. the chaincode
// message a client gets back from an endorser, which may be wrapped in other
// text ("chaincode response 500, REPLAY: ..."). It returns nil if none is found.
func ParseError(msg string) *Error {
	best := -1
	var code Code
	for _, c := range knownCodes {
		if i := strings.Index(msg, string(c)+": "); i >= 0 && (best < 0 || i < best) {
			best, code = i, c
		}
	}
	if best < 0 {
		return nil
	}
	return &Error{Code: code, Message: msg[best+len(code)+2:]}
}

// CodeOf returns the code of err if it is (or wraps, or mentions) a
// classified error, and "" otherwise.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if p := ParseError(err.Error()); p != nil {
		return p.Code
	}
	return ""
}
