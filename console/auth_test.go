package console

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
)

func TestConsoleRefusesConnectionsWithoutAnOrgCertificateInTheHandshake(t *testing.T) {
	fx := newFixture(t)
	other := wiretest.NewCA(t, "ca.org2.example.com")
	certPEM, keyPEM := other.Issue(t, "operator", api.RoleOperator, wiretest.Epoch.AddDate(5, 0, 0))
	foreign, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
	}{
		{"no client certificate", nil},
		{"an operator certificate of another org's CA", []tls.Certificate{foreign}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/api/v1/me", "/", "/static/css/console.css"} {
				res, err := fx.clientWith(tc.certs...).Get(fx.ts.URL + path)
				if err == nil {
					_ = res.Body.Close()
				}
				require.Error(t, err, "GET %s must fail in the TLS handshake", path)
			}
			require.Empty(t, fx.ledgers.opened, "nothing may reach the ledger")
		})
	}
}

func TestConsoleRefusesRequestsThatDidNotComeOverVerifiedTLS(t *testing.T) {
	fx := newFixture(t)
	// The handler on its own (say, mounted behind a plain listener by
	// mistake) still admits nobody.
	rec := httptestRecorder(fx, "/api/v1/me")
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Equal(t, CodeUnauthenticated, apiError(t, rec.Body.String()).Code)
}

func TestConsoleRefusesIdentitiesThatMayNotUseIt(t *testing.T) {
	fx := newFixture(t)
	stranger, strangerKey := fx.ca.Issue(t, "stranger", api.RoleOperator, wiretest.Epoch.AddDate(5, 0, 0))
	strangerCert, err := tls.X509KeyPair(stranger, strangerKey)
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		client  *http.Client
		code    string
		message string
	}{
		{"hub role", fx.as("hub"), CodeForbidden, "may not use the console"},
		{"no role attribute", fx.as("admin"), CodeForbidden, "no iotledger.role"},
		{"org CA certificate of no profile identity", fx.clientWith(strangerCert), CodeUnknownIdentity, "not an identity of the org's connection profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/api/v1/me", "/api/v1/devices", "/", "/static/js/api.js"} {
				status, body := fx.do(tc.client, "GET", path, "")
				require.Equal(t, http.StatusForbidden, status, "GET %s: %s", path, body)
				require.Contains(t, body, tc.message)
				if strings.HasPrefix(path, "/api/") {
					require.Equal(t, tc.code, apiError(t, body).Code)
				}
			}
		})
	}
	require.Empty(t, fx.ledgers.opened, "no ledger client for a refused identity")
}

func TestAuditorReadsButCannotWrite(t *testing.T) {
	fx := newFixture(t)
	auditor := fx.as("auditor")
	status, body := fx.do(auditor, "GET", "/api/v1/devices", "")
	require.Equal(t, http.StatusOK, status, body)
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/api/v1/devices/sensor-1/suspend", `{"reason":"x","confirm":"sensor-1"}`},
		{"POST", "/api/v1/devices/sensor-1/revoke", `{"reason":"x","confirm":"sensor-1"}`},
		{"POST", "/api/v1/devices/sensor-1/rotate-key", `{"publicKey":"k","confirm":"sensor-1"}`},
		{"POST", "/api/v1/commands", `{"device":"sensor-1","name":"reboot"}`},
		{"PUT", "/api/v1/policies/p1", `{"id":"p1"}`},
		{"PUT", "/api/v1/rules/r1", `{"id":"r1"}`},
	} {
		status, body := fx.do(auditor, w.method, w.path, w.body)
		require.Equal(t, http.StatusForbidden, status, "%s %s: %s", w.method, w.path, body)
		e := apiError(t, body)
		require.Equal(t, CodeForbidden, e.Code)
		require.Contains(t, e.Message, "role auditor")
	}
	for _, m := range []string{"SetDeviceStatus", "RotateDeviceKey", "SendCommand", "PutPolicy", "PutRule"} {
		require.Empty(t, fx.ledgers.callsOf(m), "%s must not reach the ledger for an auditor", m)
	}
}

func TestOperatorWritesAsTheIdentityOfItsCertificate(t *testing.T) {
	fx := newFixture(t)
	op := fx.as("operator")
	status, body := fx.do(op, "POST", "/api/v1/devices/sensor-1/suspend", `{"reason":"overheating","confirm":"sensor-1"}`)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"status":"suspended"`)
	status, body = fx.do(op, "POST", "/api/v1/commands", `{"device":"sensor-1","name":"reboot","params":{"delay":5}}`)
	require.Equal(t, http.StatusCreated, status, body)

	calls := fx.ledgers.callsOf("SetDeviceStatus")
	require.Len(t, calls, 1)
	require.Equal(t, "operator", calls[0].identity)
	require.Equal(t, []any{"sensor-1", api.StatusSuspended, "overheating"}, calls[0].args)
	sent := fx.ledgers.callsOf("SendCommand")
	require.Len(t, sent, 1)
	require.Equal(t, "operator", sent[0].identity)
	require.Equal(t, "reboot", sent[0].args[0].(api.CommandRequest).Name)

	// An auditor signing in too gets a ledger client of its own; each is
	// opened once.
	status, _ = fx.do(fx.as("auditor"), "GET", "/api/v1/devices/sensor-1", "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, map[string]int{"operator": 1, "auditor": 1}, fx.ledgers.opened)
}

func TestMeSaysWhatTheCallerMayDo(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct {
		who       string
		may, mayN []Permission
	}{
		{"operator", []Permission{PermDeviceRead, PermDeviceManage, PermDeviceCommand, PermPolicyManage, PermRuleManage}, nil},
		{"auditor", []Permission{PermDeviceRead, PermTelemetryRead, PermPolicyRead}, []Permission{PermDeviceManage, PermDeviceCommand, PermPolicyManage, PermRuleManage}},
	} {
		status, body := fx.do(fx.as(tc.who), "GET", "/api/v1/me", "")
		require.Equal(t, http.StatusOK, status, body)
		var me Me
		requireStrictJSON(t, body, &me)
		require.Equal(t, tc.who, me.Name)
		require.Equal(t, tc.who, me.Role)
		require.Equal(t, "Org1MSP", me.MSPID)
		require.Equal(t, "Org1", me.Org)
		require.Subset(t, me.Permissions, tc.may)
		for _, p := range tc.mayN {
			require.NotContains(t, me.Permissions, p)
		}
	}
}
