package console

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/network"
)

// openAPIFile is the API's description, checked against the server here.
var openAPIFile = filepath.Join("..", "docs", "console-api.yaml")

type openAPIDoc struct {
	OpenAPI    string                          `yaml:"openapi"`
	Paths      map[string]map[string]openAPIOp `yaml:"paths"`
	Components struct {
		Responses     map[string]openAPIResponse `yaml:"responses"`
		RequestBodies map[string]openAPIResponse `yaml:"requestBodies"`
	} `yaml:"components"`
}

type openAPIOp struct {
	OperationID string                     `yaml:"operationId"`
	RequestBody *openAPIResponse           `yaml:"requestBody"`
	Responses   map[string]openAPIResponse `yaml:"responses"`
}

type openAPIResponse struct {
	Ref     string                      `yaml:"$ref"`
	Content map[string]openAPIMediaType `yaml:"content"`
}

type openAPIMediaType struct {
	Example any `yaml:"example"`
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	data, err := os.ReadFile(openAPIFile)
	require.NoError(t, err)
	var doc openAPIDoc
	require.NoError(t, yaml.Unmarshal(data, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."), "an OpenAPI 3 document")
	return &doc
}

func TestOpenAPIDescribesExactlyTheRoutesTheServerServes(t *testing.T) {
	doc := loadOpenAPI(t)
	fx := newFixture(t)
	var served, documented []string
	for _, r := range fx.srv.Routes() {
		if strings.HasPrefix(r.Path, "/api/") {
			served = append(served, r.Method+" "+r.Path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(served)
	sort.Strings(documented)
	require.NotEmpty(t, served)
	require.Equal(t, served, documented, "docs/console-api.yaml and the server's routes differ")
}

// exampleTypes are the Go types an operation's example bodies must decode
// into, strictly: request body, then the JSON response of its success.
var exampleTypes = map[string]struct{ request, response func() any }{
	"getMe":              {nil, func() any { return &Me{} }},
	"getFleet":           {nil, func() any { return &Fleet{} }},
	"getThroughput":      {nil, func() any { return &Throughput{} }},
	"listDevices":        {nil, func() any { return &api.DevicePage{} }},
	"getDevice":          {nil, func() any { return &DeviceDetail{} }},
	"listReadings":       {nil, func() any { return &Readings{} }},
	"streamReadings":     {nil, nil},
	"readingSummary":     {nil, func() any { return &Summary{} }},
	"readingReceipt":     {nil, nil},
	"getAudit":           {nil, func() any { return &Audit{} }},
	"listDeviceCommands": {nil, func() any { return &api.CommandPage{} }},
	"suspendDevice":      {func() any { return &StatusAction{} }, func() any { return &api.Device{} }},
	"activateDevice":     {func() any { return &StatusAction{} }, func() any { return &api.Device{} }},
	"revokeDevice":       {func() any { return &StatusAction{} }, func() any { return &api.Device{} }},
	"rotateDeviceKey":    {func() any { return &RotateKeyAction{} }, func() any { return &api.Device{} }},
	"sendCommand":        {func() any { return &api.CommandRequest{} }, func() any { return &SentCommands{} }},
	"getCommand":         {nil, func() any { return &api.Command{} }},
	"listAlerts":         {nil, func() any { return &Alerts{} }},
	"streamEvents":       {nil, nil},
	"listPolicies":       {nil, func() any { return &api.PolicyPage{} }},
	"putPolicy":          {func() any { return &api.Policy{} }, func() any { return &api.Policy{} }},
	"listRules":          {nil, func() any { return &api.RulePage{} }},
	"putRule":            {func() any { return &api.Rule{} }, func() any { return &api.Rule{} }},
	"explain":            {func() any { return &api.AccessRequest{} }, func() any { return &api.Explanation{} }},
	"getHealth":          {nil, func() any { return &struct{ Network *network.Status }{} }},
	"getHubs":            {nil, func() any { return &Hubs{} }},
}

func TestOpenAPIExamplesDecodeIntoTheServersTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	resolve := func(r openAPIResponse, from map[string]openAPIResponse) openAPIResponse {
		if name, ok := strings.CutPrefix(r.Ref, "#/components/"); ok {
			_, key, _ := strings.Cut(name, "/")
			got, found := from[key]
			require.True(t, found, "unresolved %s", r.Ref)
			return got
		}
		return r
	}
	check := func(where string, r openAPIResponse, into func() any) {
		mt, ok := r.Content["application/json"]
		if into == nil {
			return
		}
		require.True(t, ok, "%s: no application/json content", where)
		require.NotNil(t, mt.Example, "%s: no example", where)
		data, err := json.Marshal(mt.Example)
		require.NoError(t, err, where)
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(into()), "%s: example %s", where, data)
	}
	var ids []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			where := strings.ToUpper(method) + " " + path
			require.NotEmpty(t, op.OperationID, where)
			ids = append(ids, op.OperationID)
			types, ok := exampleTypes[op.OperationID]
			require.True(t, ok, "%s: operation %s has no entry in exampleTypes", where, op.OperationID)
			if types.request != nil {
				require.NotNil(t, op.RequestBody, "%s: no request body", where)
				check(where+" request", resolve(*op.RequestBody, doc.Components.RequestBodies), types.request)
			}
			var success []string
			for status, resp := range op.Responses {
				resp = resolve(resp, doc.Components.Responses)
				if strings.HasPrefix(status, "2") {
					success = append(success, status)
					check(where+" "+status, resp, types.response)
				} else {
					check(where+" "+status, resp, func() any { return &Error{} })
				}
			}
			require.Len(t, success, 1, "%s: one success response", where)
		}
	}
	for id := range exampleTypes {
		require.True(t, slices.Contains(ids, id), "exampleTypes names %s, which the document does not have", id)
	}
}
