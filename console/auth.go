package console

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/console/identity"
)

// Permission is something a console user may do. The ledger decides in the
// end (its policies are enforced in every transaction); the console only
// refuses early what a role can never do, and tells the UI what to offer.
type Permission string

// Permissions.
const (
	PermDeviceRead    Permission = "device:read"
	PermDeviceManage  Permission = "device:manage"  // suspend, activate, revoke, rotate key
	PermDeviceCommand Permission = "device:command" // send commands
	PermTelemetryRead Permission = "telemetry:read"
	PermPolicyRead    Permission = "policy:read" // policies, rules, Explain
	PermPolicyManage  Permission = "policy:manage"
	PermRuleManage    Permission = "rule:manage"
	PermReceiptRead   Permission = "receipt:read"
	PermNetworkRead   Permission = "network:read"
)

var readPermissions = []Permission{PermDeviceRead, PermTelemetryRead, PermPolicyRead, PermReceiptRead, PermNetworkRead}

// rolePermissions: operators read and write, auditors only read. Hubs and
// identities without a role cannot sign in at all (identity.Lookup).
var rolePermissions = map[string][]Permission{
	api.RoleOperator: append(slices.Clone(readPermissions), PermDeviceManage, PermDeviceCommand, PermPolicyManage, PermRuleManage),
	api.RoleAuditor:  readPermissions,
}

// PermissionsOf lists what a role may do in the console.
func PermissionsOf(role string) []Permission { return slices.Clone(rolePermissions[role]) }

func allowed(role string, p Permission) bool {
	return p == "" || slices.Contains(rolePermissions[role], p)
}

// route is one endpoint: what it needs and what serves it.
type route struct {
	method string
	path   string
	need   Permission // "" for any signed-in user
	serve  func(w http.ResponseWriter, r *http.Request, c identity.Caller) error
}

// authenticated runs next for a caller whose verified client certificate
// is an identity of the profile with a console role, and refuses everyone
// else with 403 (and anyone not on verified TLS at all with 401).
func (s *Server) authenticated(next func(w http.ResponseWriter, r *http.Request, c identity.Caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			refuse(w, r, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: identity.ErrNoCertificate.Error()})
			return
		}
		c, err := s.dir.Lookup(r.TLS.VerifiedChains[0][0])
		if err != nil {
			s.log.InfoContext(r.Context(), "console sign-in refused", "subject", r.TLS.VerifiedChains[0][0].Subject.String(), "err", err)
			code := CodeForbidden
			if errors.Is(err, identity.ErrUnknownCertificate) {
				code = CodeUnknownIdentity
			}
			refuse(w, r, &Error{Status: http.StatusForbidden, Code: code, Message: err.Error()})
			return
		}
		next(w, r, c)
	})
}

// authorize wraps a route: authentication, the route's permission, the
// body size limit, and the writing of its error.
func (s *Server) authorize(rt route) http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, c identity.Caller) {
		if !allowed(c.Role, rt.need) {
			refuse(w, r, &Error{Status: http.StatusForbidden, Code: CodeForbidden,
				Message: "identity " + c.Name + " has role " + c.Role + ", which may not " + string(rt.need) + " (it may: " + joinPerms(PermissionsOf(c.Role)) + ")"})
			return
		}
		if err := s.csrf.Check(r); err != nil {
			// A browser holding a client certificate sends it to any page
			// that asks: a write must come from the console's own pages.
			refuse(w, r, &Error{Status: http.StatusForbidden, Code: CodeCrossOrigin,
				Message: "cross-origin request refused: changes can only be made from the console's own pages (" + err.Error() + ")"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.limits.MaxBodyBytes)
		if err := rt.serve(w, r, c); err != nil {
			s.fail(w, r, err)
		}
	})
}

func joinPerms(ps []Permission) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return strings.Join(out, ", ")
}

// refuse answers an API request with a JSON error and a page with text.
func refuse(w http.ResponseWriter, r *http.Request, e *Error) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeError(w, e)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(http.StatusText(e.Status) + ": " + e.Message + "\n"))
}
