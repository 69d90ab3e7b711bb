package k8s_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"

	"github.com/iotledger/iotledger/deploy/k8s"
)

// kubernetesModule carries the OpenAPI schema of the Kubernetes API
// (api/openapi-spec/swagger.json). The Go module proxy serves it like any
// module, so the schema is had offline from the module cache once fetched.
const kubernetesModule = "k8s.io/kubernetes@v1.37.2"

// kubernetesModuleSum pins the module's content as go.sum would: the
// download is checked against it, not against a checksum database.
const kubernetesModuleSum = "h1:A2VDEiObzkYqFTKhSsn0ZEb0RlLEXpHWj93gi2HqEwE="

// apiSchema is the Kubernetes API schema made strict the way kubeconform's
// -strict is: no object takes a field its definition does not list.
type apiSchema struct {
	definitions map[string]any
	byGVK       map[string]string // "apps/v1 Deployment" -> definition name
	mu          sync.Mutex
	compiled    map[string]*gojsonschema.Schema
}

var (
	schemaOnce sync.Once
	schema     *apiSchema
	schemaErr  error
)

func loadSchema(t *testing.T) *apiSchema {
	t.Helper()
	schemaOnce.Do(func() { schema, schemaErr = readSchema() })
	require.NoError(t, schemaErr)
	return schema
}

func readSchema() (*apiSchema, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", kubernetesModule)
	cmd.Dir = os.TempDir() // outside any module: only the module cache is touched
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GONOSUMDB=k8s.io/kubernetes")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod download %s (the Kubernetes API schema): %w: %s", kubernetesModule, err, stderr.String())
	}
	var mod struct{ Dir, Sum, Error string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return nil, err
	}
	if mod.Error != "" {
		return nil, fmt.Errorf("go mod download %s: %s", kubernetesModule, mod.Error)
	}
	if mod.Sum != kubernetesModuleSum {
		return nil, fmt.Errorf("go mod download %s: content hash %s, want %s", kubernetesModule, mod.Sum, kubernetesModuleSum)
	}
	data, err := os.ReadFile(filepath.Join(mod.Dir, "api", "openapi-spec", "swagger.json"))
	if err != nil {
		return nil, err
	}
	var spec struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, err
	}
	s := &apiSchema{definitions: map[string]any{}, byGVK: map[string]string{}, compiled: map[string]*gojsonschema.Schema{}}
	for name, def := range spec.Definitions {
		strict(def)
		s.definitions[name] = def
		gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			m, _ := g.(map[string]any)
			apiVersion := m["version"].(string)
			if group, _ := m["group"].(string); group != "" {
				apiVersion = group + "/" + apiVersion
			}
			s.byGVK[apiVersion+" "+m["kind"].(string)] = name
		}
	}
	// Two scalar kinds that YAML writes as numbers or strings.
	s.definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = map[string]any{
		"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	s.definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"] = map[string]any{
		"oneOf": []any{map[string]any{"type": "string", "pattern": `^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$`}, map[string]any{"type": "number"}}}
	return s, nil
}

// strict forbids fields a schema object does not list, at every level.
func strict(v any) {
	switch x := v.(type) {
	case map[string]any:
		if props, ok := x["properties"].(map[string]any); ok {
			if _, set := x["additionalProperties"]; !set && x["x-kubernetes-preserve-unknown-fields"] != true {
				x["additionalProperties"] = false
			}
			for _, p := range props {
				strict(p)
			}
		}
		if items, ok := x["items"]; ok {
			strict(items)
		}
		if ap, ok := x["additionalProperties"].(map[string]any); ok {
			strict(ap)
		}
	case []any:
		for _, e := range x {
			strict(e)
		}
	}
}

func (s *apiSchema) validate(d k8s.Document) error {
	key := d.APIVersion() + " " + d.Kind()
	name, ok := s.byGVK[key]
	if !ok {
		return fmt.Errorf("%s: apiVersion %q kind %q is not a Kubernetes API type", d, d.APIVersion(), d.Kind())
	}
	s.mu.Lock()
	sch, ok := s.compiled[name]
	if !ok {
		var err error
		sch, err = gojsonschema.NewSchema(gojsonschema.NewGoLoader(map[string]any{
			"$ref": "#/definitions/" + name, "definitions": s.definitions,
		}))
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("compile the schema of %s: %w", name, err)
		}
		s.compiled[name] = sch
	}
	s.mu.Unlock()
	res, err := sch.Validate(gojsonschema.NewGoLoader(d.Object))
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	if !res.Valid() {
		var msgs []string
		for _, e := range res.Errors() {
			msgs = append(msgs, e.String())
		}
		return fmt.Errorf("%s does not match the Kubernetes API schema of %s:\n  %s", d, name, strings.Join(msgs, "\n  "))
	}
	return nil
}

// checkWorkload holds each workload to what these manifests promise:
// non-root, read-only root file system, no privilege escalation, no
// capabilities, requests and limits, selectors that select the pods,
// mounts of declared volumes, and ports the probes and Services name.
func checkWorkload(d k8s.Document) error {
	spec := d.PodSpec()
	if spec == nil {
		return nil
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	podNonRoot := k8s.Get(spec, "securityContext", "runAsNonRoot") == true
	labels, _ := k8s.Get(d.Object, "spec", "template", "metadata", "labels").(map[string]any)
	sel, _ := k8s.Get(d.Object, "spec", "selector", "matchLabels").(map[string]any)
	if len(sel) == 0 {
		fail("no spec.selector.matchLabels")
	}
	for k, v := range sel {
		if labels[k] != v {
			fail("selector %s=%v does not select the pod template (labels %v)", k, v, labels)
		}
	}
	volumes := map[string]bool{}
	vs, _ := spec["volumes"].([]any)
	for _, v := range vs {
		volumes[fmt.Sprint(k8s.Get(v, "name"))] = true
	}
	claims, _ := k8s.Get(d.Object, "spec", "volumeClaimTemplates").([]any)
	for _, c := range claims {
		volumes[fmt.Sprint(k8s.Get(c, "metadata", "name"))] = true
	}
	if spec["automountServiceAccountToken"] != false {
		fail("automountServiceAccountToken must be false: no component talks to the Kubernetes API")
	}
	for _, c := range d.Containers() {
		sc := c.Object["securityContext"]
		if k8s.Get(sc, "allowPrivilegeEscalation") != false {
			fail("container %s: securityContext.allowPrivilegeEscalation must be false", c.Name)
		}
		if k8s.Get(sc, "readOnlyRootFilesystem") != true {
			fail("container %s: securityContext.readOnlyRootFilesystem must be true", c.Name)
		}
		if !podNonRoot && k8s.Get(sc, "runAsNonRoot") != true {
			fail("container %s: runAsNonRoot must be true (pod or container)", c.Name)
		}
		if k8s.Get(sc, "runAsNonRoot") == false || k8s.Get(sc, "privileged") == true {
			fail("container %s: runs as root or privileged", c.Name)
		}
		if drop, _ := k8s.Get(sc, "capabilities", "drop").([]any); !slices.Contains(drop, any("ALL")) {
			fail("container %s: capabilities.drop must hold ALL", c.Name)
		}
		for _, kind := range []string{"requests", "limits"} {
			for _, res := range []string{"cpu", "memory"} {
				if k8s.Get(c.Object, "resources", kind, res) == nil {
					fail("container %s: resources.%s.%s is not set", c.Name, kind, res)
				}
			}
		}
		if len(c.Command) == 0 {
			fail("container %s: command must name the binary (the tests check its flags)", c.Name)
		}
		mounts, _ := c.Object["volumeMounts"].([]any)
		for _, m := range mounts {
			if name := fmt.Sprint(k8s.Get(m, "name")); !volumes[name] {
				fail("container %s: mounts volume %q, which the pod does not declare", c.Name, name)
			}
		}
		ports := map[string]bool{}
		ps, _ := c.Object["ports"].([]any)
		for _, p := range ps {
			ports[fmt.Sprint(k8s.Get(p, "name"))] = true
		}
		for _, probe := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
			for _, kind := range []string{"httpGet", "tcpSocket", "grpc"} {
				if p, ok := k8s.Get(c.Object, probe, kind, "port").(string); ok && !ports[p] {
					fail("container %s: %s names port %q, which the container does not declare", c.Name, probe, p)
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s:\n  %s", d, strings.Join(errs, "\n  "))
	}
	return nil
}

// checkServices: every Service selects the pods of a workload and targets
// a port those pods name.
func checkServices(docs []k8s.Document) error {
	var errs []string
	for _, d := range docs {
		if d.Kind() != "Service" {
			continue
		}
		sel, _ := k8s.Get(d.Object, "spec", "selector").(map[string]any)
		var target *k8s.Document
		for i, w := range docs {
			labels, _ := k8s.Get(w.Object, "spec", "template", "metadata", "labels").(map[string]any)
			if w.PodSpec() == nil || len(sel) == 0 {
				continue
			}
			all := true
			for k, v := range sel {
				all = all && labels[k] == v
			}
			if all {
				target = &docs[i]
				break
			}
		}
		if target == nil {
			errs = append(errs, fmt.Sprintf("%s: selector %v selects no workload's pods", d, sel))
			continue
		}
		named := map[string]bool{}
		for _, c := range target.Containers() {
			ps, _ := c.Object["ports"].([]any)
			for _, p := range ps {
				named[fmt.Sprint(k8s.Get(p, "name"))] = true
			}
		}
		ports, _ := k8s.Get(d.Object, "spec", "ports").([]any)
		for _, p := range ports {
			if tp, ok := k8s.Get(p, "targetPort").(string); ok && !named[tp] {
				errs = append(errs, fmt.Sprintf("%s: targetPort %q is no port of %s", d, tp, *target))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// validateFile runs every check on one manifest file.
func validateFile(t *testing.T, name string, data []byte) error {
	docs, err := k8s.Decode(name, data)
	if err != nil {
		return err
	}
	s := loadSchema(t)
	for _, d := range docs {
		if err := s.validate(d); err != nil {
			return err
		}
		if err := checkWorkload(d); err != nil {
			return err
		}
		for _, c := range d.Containers() {
			if _, err := c.ExpandedArgs(func(n string) string { return n }); err != nil {
				return err
			}
		}
	}
	return checkServices(docs)
}

func manifestFiles(t *testing.T) map[string][]byte {
	t.Helper()
	names, err := fs.Glob(k8s.Files(), "*.yaml")
	require.NoError(t, err)
	out := map[string][]byte{}
	for _, n := range names {
		if n == k8s.KustomizationFile {
			continue
		}
		b, err := fs.ReadFile(k8s.Files(), n)
		require.NoError(t, err)
		out[n] = b
	}
	require.NotEmpty(t, out)
	return out
}

func TestManifestsMatchTheKubernetesAPISchemaAndOurRules(t *testing.T) {
	files := manifestFiles(t)
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, validateFile(t, name, data))
		})
	}
	docs, err := k8s.Documents()
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, d := range docs {
		kinds[d.Kind()]++
	}
	require.Equal(t, map[string]int{"Deployment": 2, "StatefulSet": 2, "Service": 3}, kinds,
		"chaincode Deployment + Service, hub StatefulSet + 2 Services, index StatefulSet (SQLite) or Deployment (PostgreSQL)")
}

// TestManifestCheckRefusesMistakes shows that the checks catch what a
// cluster would refuse or what would run unsafely: each case changes one
// thing in a valid manifest.
func TestManifestCheckRefusesMistakes(t *testing.T) {
	files := manifestFiles(t)
	cases := []struct {
		name, file, old, new, err string
	}{
		{"misspelled spec field", "chaincode.yaml", "  replicas: 2", "  replica: 2", "Additional property replica is not allowed"},
		{"misspelled container field", "hub.yaml", "          imagePullPolicy: IfNotPresent", "          imagePullPolicy: IfNotPresent\n          imagePulPolicy: Always", "Additional property imagePulPolicy is not allowed"},
		{"misspelled probe field", "hub.yaml", "            periodSeconds: 10\n            failureThreshold: 3", "            periodSecond: 10\n            failureThreshold: 3", "Additional property periodSecond is not allowed"},
		{"misspelled metadata field", "index.yaml", "  name: iotledger-index\n  labels:", "  nam: iotledger-index\n  labels:", "Additional property nam is not allowed"},
		{"wrong type", "chaincode.yaml", "containerPort: 9999", `containerPort: "ninety"`, "containerPort"},
		{"bad quantity", "index.yaml", "storage: 20Gi", "storage: twenty", "storage"},
		{"missing required field", "chaincode.yaml", "        - name: chaincode\n          image:", "        - image:", "name"},
		{"unknown kind", "chaincode.yaml", "kind: Deployment", "kind: Deploymnet", "not a Kubernetes API type"},
		{"unknown apiVersion", "index.yaml", "apiVersion: apps/v1", "apiVersion: apps/v1beta9", "not a Kubernetes API type"},
		{"writable root fs", "hub.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"privilege escalation", "chaincode.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"},
		{"no limits", "chaincode.yaml", "            limits:\n              cpu: \"2\"\n              memory: 512Mi\n", "", "resources.limits"},
		{"selector misses the pods", "index.yaml", "    matchLabels:\n      app.kubernetes.io/name: iotledger-index", "    matchLabels:\n      app.kubernetes.io/name: iotledger-idx", "does not select"},
		{"service selects nothing", "chaincode.yaml", "  selector:\n    app.kubernetes.io/name: iotledger-chaincode\n  ports:", "  selector:\n    app.kubernetes.io/name: chaincode\n  ports:", "selects no workload"},
		{"probe names no port", "hub.yaml", "              path: /healthz\n              port: http", "              path: /healthz\n              port: https", "names port"},
		{"mount of no volume", "hub.yaml", "            - name: tmp\n              mountPath: /tmp", "            - name: scratch\n              mountPath: /tmp", "does not declare"},
		{"args name an undefined variable", "index-postgres.yaml", "--db=$(IOTLEDGER_INDEX_DB)", "--db=$(IOTLEDGER_INDEX_DSN)", "IOTLEDGER_INDEX_DSN"},
		{"duplicate key", "chaincode.yaml", "  replicas: 2", "  replicas: 2\n  replicas: 3", "already defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			orig := string(files[tc.file])
			require.Contains(t, orig, tc.old, "the case must change the manifest")
			mutated := strings.Replace(orig, tc.old, tc.new, 1)
			require.NoError(t, validateFile(t, tc.file, []byte(orig)))
			err := validateFile(t, tc.file, []byte(mutated))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.err)
		})
	}
}

// kustomization is the part of kustomize's Kustomization these manifests use.
type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Namespace  string   `yaml:"namespace"`
	Resources  []string `yaml:"resources"`
	Labels     []struct {
		Pairs            map[string]string `yaml:"pairs"`
		IncludeSelectors bool              `yaml:"includeSelectors"`
	} `yaml:"labels"`
	ConfigMapGenerator []struct {
		Name     string   `yaml:"name"`
		Literals []string `yaml:"literals"`
	} `yaml:"configMapGenerator"`
	Images []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

func TestKustomizationNamesTheManifestsAndTheChaincodeID(t *testing.T) {
	data, err := fs.ReadFile(k8s.Files(), k8s.KustomizationFile)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var k kustomization
	require.NoError(t, dec.Decode(&k))
	require.Equal(t, "kustomize.config.k8s.io/v1beta1", k.APIVersion)
	require.Equal(t, "Kustomization", k.Kind)
	files := manifestFiles(t)
	for _, r := range k.Resources {
		require.Contains(t, files, r, "resource %s", r)
	}
	require.ElementsMatch(t, []string{"chaincode.yaml", "hub.yaml", "index.yaml"}, k.Resources, "index-postgres.yaml replaces index.yaml, never both")

	// The server's package ID comes from the generated ConfigMap.
	docs, err := k8s.Documents()
	require.NoError(t, err)
	generated := map[string][]string{}
	for _, g := range k.ConfigMapGenerator {
		for _, l := range g.Literals {
			generated[g.Name] = append(generated[g.Name], strings.SplitN(l, "=", 2)[0])
		}
	}
	var refs int
	for _, d := range docs {
		for _, c := range d.Containers() {
			envs, _ := c.Object["env"].([]any)
			for _, e := range envs {
				ref, ok := k8s.Get(e, "valueFrom", "configMapKeyRef").(map[string]any)
				if !ok {
					continue
				}
				refs++
				require.Contains(t, generated[fmt.Sprint(ref["name"])], ref["key"], "%s: env %v", d, k8s.Get(e, "name"))
			}
		}
	}
	require.Positive(t, refs)
	for _, img := range k.Images {
		for _, d := range docs {
			for _, c := range d.Containers() {
				require.True(t, strings.HasPrefix(fmt.Sprint(c.Object["image"]), img.Name+":"), "%s: image %v is not %s, which kustomization.yaml sets", d, c.Object["image"], img.Name)
			}
		}
	}
}
