package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/index"
)

// Error is the body of every error the API returns: {code, message}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Error codes of the API beyond the chaincode's own (api.Code values, which
// pass through: INVALID_ARGUMENT, NOT_FOUND, ACCESS_DENIED, ...).
const (
	CodeUnauthenticated = "UNAUTHENTICATED"  // no verified client certificate
	CodeUnknownIdentity = "UNKNOWN_IDENTITY" // a certificate of no profile identity
	CodeForbidden       = "FORBIDDEN"        // the role may not do this
	CodeBadRequest      = "BAD_REQUEST"      // malformed request (JSON, parameters)
	CodeNotFound        = "NOT_FOUND"
	CodeTooLarge        = "REQUEST_TOO_LARGE"
	CodeMediaType       = "UNSUPPORTED_MEDIA_TYPE" // a body that is not application/json
	CodeCrossOrigin     = "CROSS_ORIGIN"           // a write from another site's page
	CodeTooManyStreams  = "TOO_MANY_STREAMS"
	CodeUnavailable     = "UNAVAILABLE" // the ledger, the index or the health source cannot be reached
	CodeLedger          = "LEDGER_ERROR"
	CodeInternal        = "INTERNAL"
)

// statusOfCode maps the chaincode's error codes to HTTP statuses.
var statusOfCode = map[api.Code]int{
	api.CodeInvalidArgument:    http.StatusBadRequest,
	api.CodeNotFound:           http.StatusNotFound,
	api.CodeAlreadyExists:      http.StatusConflict,
	api.CodeAccessDenied:       http.StatusForbidden,
	api.CodeFailedPrecondition: http.StatusConflict,
	api.CodeDeviceInactive:     http.StatusConflict,
	api.CodeResourceExhausted:  http.StatusTooManyRequests,
	api.CodeBadSignature:       http.StatusBadRequest,
	api.CodeReplay:             http.StatusConflict,
	api.CodeClockSkew:          http.StatusServiceUnavailable,
	api.CodeInconsistentRecord: http.StatusBadGateway,
	api.CodeInternal:           http.StatusBadGateway,
}

// asError classifies any error of a handler.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: fmt.Sprintf("request body over %d bytes", mbe.Limit)}
	}
	if errors.Is(err, index.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error()}
	}
	var te *client.TransactionError
	if errors.As(err, &te) {
		if te.Code != "" {
			st, ok := statusOfCode[te.Code]
			if !ok {
				st = http.StatusBadGateway
			}
			return &Error{Status: st, Code: string(te.Code), Message: te.Message}
		}
		if te.Unavailable() {
			return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: te.Error()}
		}
		return &Error{Status: http.StatusBadGateway, Code: CodeLedger, Message: te.Error()}
	}
	if c := api.CodeOf(err); c != "" {
		st, ok := statusOfCode[c]
		if !ok {
			st = http.StatusBadGateway
		}
		return &Error{Status: st, Code: string(c), Message: err.Error()}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if e.Status >= 500 {
		s.log.WarnContext(r.Context(), "console request failed", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", e.Message)
	}
	writeError(w, e)
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// decodeStrict reads exactly one JSON value into v: unknown fields, a
// missing body and trailing data are refused, each with its own message.
func decodeStrict(r *http.Request, v any) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		if r.ContentLength == 0 {
			return badRequest("the request needs a JSON body (Content-Type: application/json)")
		}
		// Only a script of the console's own origin can send this type
		// (anything else needs a CORS preflight, which the console never
		// grants); an HTML form cannot.
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeMediaType,
			Message: fmt.Sprintf("Content-Type %q: send the body as application/json", r.Header.Get("Content-Type"))}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.Is(err, io.EOF):
			return badRequest("the request needs a JSON body")
		}
		return badRequest("request body: %v", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("request body: it must hold one JSON value, and nothing after it")
	}
	return nil
}
