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
	// CodeClockSkew refuses a proposal whose timestamp is too far from the
	// endorsing peer's clock (the transaction time would be a lie).
	CodeClockSkew Code = "CLOCK_SKEW"
	// CodeInconsistentRecord refuses a stored record whose content is not
	// what the ledger enforces for it (e.g. an owner its key-level
	// endorsement policy does not name), or that cannot be decoded.
	CodeInconsistentRecord Code = "INCONSISTENT_RECORD"
	// CodeResourceExhausted refuses a transaction that would exceed a bound
	// on the work or the records of one org or one transaction.
	CodeResourceExhausted Code = "RESOURCE_EXHAUSTED"
)

var knownCodes = []Code{
	CodeInvalidArgument, CodeNotFound, CodeAlreadyExists, CodeAccessDenied, CodeBadSignature,
	CodeReplay, CodeDeviceInactive, CodeFailedPrecondition, CodeInternal,
	CodeClockSkew, CodeInconsistentRecord, CodeResourceExhausted,
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
