package console

import (
	"io"
	"io/fs"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/receipt/verifyjs"
)

// served is a response of the console, read.
type served struct {
	status int
	header http.Header
	body   []byte
}

// get fetches path as the operator.
func (fx *fixture) get(t *testing.T, path string) served {
	t.Helper()
	res, err := fx.as("operator").Get(fx.ts.URL + path)
	require.NoError(t, err)
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return served{status: res.StatusCode, header: res.Header, body: body}
}

func TestTheReceiptsPageGetsTheVerifierTheNodeVerifierRuns(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct{ path, file, contentType string }{
		{"/static/receipt/verify.mjs", "verify.mjs", "text/javascript; charset=utf-8"},
		{"/static/receipt/fabric.proto", "fabric.proto", "text/plain; charset=utf-8"},
	} {
		res := fx.get(t, tc.path)
		require.Equal(t, http.StatusOK, res.status, tc.path)
		require.Equal(t, tc.contentType, res.header.Get("Content-Type"), tc.path)
		want, err := fs.ReadFile(verifyjs.Files(), tc.file)
		require.NoError(t, err)
		require.Equal(t, want, res.body, "%s is receipt/verifyjs/%s, the file the node verifier runs", tc.path, tc.file)
	}
	require.Equal(t, http.StatusNotFound, fx.get(t, "/static/receipt/").status, "no directory listings")
	require.Equal(t, http.StatusNotFound, fx.get(t, "/static/receipt/verifyjs.go").status, "only the embedded files")
}

func TestOnlyTheVerifierWorkerMayEvaluateCodeAndItMayFetchNothing(t *testing.T) {
	fx := newFixture(t)
	res := fx.get(t, receiptWorker)
	require.Equal(t, http.StatusOK, res.status)
	require.Contains(t, string(res.body), "importScripts")
	require.Equal(t, "default-src 'none'; script-src 'self' 'unsafe-eval'", res.header.Get("Content-Security-Policy"))

	// Every other script, and the pages, keep the policy without eval.
	for _, path := range []string{"/static/js/receipts.js", "/static/receipt/verify.mjs", "/static/vendor/protobuf.min.js"} {
		res := fx.get(t, path)
		require.Equal(t, http.StatusOK, res.status, path)
		require.Empty(t, res.header.Get("Content-Security-Policy"), path)
	}
	page := fx.get(t, "/receipts")
	require.Equal(t, http.StatusOK, page.status)
	require.NotContains(t, page.header.Get("Content-Security-Policy"), "unsafe-eval")
	require.Contains(t, string(page.body), `<input type="file" name="anchor" required>`)
}
