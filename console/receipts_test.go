package console

import (
	"io"
	"io/fs"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/receipt/verifyjs"
)

// get fetches path as the operator and returns the response and its body.
func (fx *fixture) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	res, err := fx.as("operator").Get(fx.ts.URL + path)
	require.NoError(t, err)
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, body
}

func TestTheReceiptsPageGetsTheVerifierTheNodeVerifierRuns(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct{ path, file, contentType string }{
		{"/static/receipt/verify.mjs", "verify.mjs", "text/javascript; charset=utf-8"},
		{"/static/receipt/fabric.proto", "fabric.proto", "text/plain; charset=utf-8"},
	} {
		res, body := fx.get(t, tc.path)
		require.Equal(t, http.StatusOK, res.StatusCode, tc.path)
		require.Equal(t, tc.contentType, res.Header.Get("Content-Type"), tc.path)
		want, err := fs.ReadFile(verifyjs.Files(), tc.file)
		require.NoError(t, err)
		require.Equal(t, want, body, "%s is receipt/verifyjs/%s, the file the node verifier runs", tc.path, tc.file)
	}
	res, _ := fx.get(t, "/static/receipt/")
	require.Equal(t, http.StatusNotFound, res.StatusCode, "no directory listings")
	res, _ = fx.get(t, "/static/receipt/verifyjs.go")
	require.Equal(t, http.StatusNotFound, res.StatusCode, "only the embedded files")
}

func TestOnlyTheVerifierWorkerMayEvaluateCodeAndItMayFetchNothing(t *testing.T) {
	fx := newFixture(t)
	res, body := fx.get(t, receiptWorker)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(body), "importScripts")
	require.Equal(t, "default-src 'none'; script-src 'self' 'unsafe-eval'", res.Header.Get("Content-Security-Policy"))

	// Every other script, and the pages, keep the policy without eval.
	for _, path := range []string{"/static/js/receipts.js", "/static/receipt/verify.mjs", "/static/vendor/protobuf.min.js"} {
		res, _ := fx.get(t, path)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		require.Empty(t, res.Header.Get("Content-Security-Policy"), path)
	}
	res, page := fx.get(t, "/receipts")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotContains(t, res.Header.Get("Content-Security-Policy"), "unsafe-eval")
	require.Contains(t, string(page), `<input type="file" name="anchor" required>`)
}
