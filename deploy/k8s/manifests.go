// Package k8s holds the Kubernetes manifests of one org's iotledger
// components (chaincode server, hub, index) and reads them back, so that
// tests can check them against the Kubernetes API schemas and the flags and
// environment the real binaries accept. See README.md for their use.
package k8s

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed *.yaml
var manifests embed.FS

// KustomizationFile is kustomize's file; it is not a Kubernetes object.
const KustomizationFile = "kustomization.yaml"

// Files are the manifests and kustomization.yaml.
func Files() fs.FS { return manifests }

// Document is one YAML document of a manifest file.
type Document struct {
	File   string
	Index  int // 0-based position in File
	Object map[string]any
}

func (d Document) String() string {
	return fmt.Sprintf("%s#%d (%s %s)", d.File, d.Index, d.Kind(), d.Name())
}

// APIVersion, Kind and Name are the object's own.
func (d Document) APIVersion() string { s, _ := d.Object["apiVersion"].(string); return s }
func (d Document) Kind() string       { s, _ := d.Object["kind"].(string); return s }
func (d Document) Name() string {
	s, _ := Get(d.Object, "metadata", "name").(string)
	return s
}

// Documents decodes every document of every manifest but kustomization.yaml.
func Documents() ([]Document, error) {
	names, err := fs.Glob(manifests, "*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Document
	for _, name := range names {
		if name == KustomizationFile {
			continue
		}
		data, err := fs.ReadFile(manifests, name)
		if err != nil {
			return nil, err
		}
		docs, err := Decode(name, data)
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	return out, nil
}

// Decode reads the YAML documents of one file. Duplicate keys, empty
// documents and documents that are not mappings are errors.
func Decode(file string, data []byte) ([]Document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Document
	for i := 0; ; i++ {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", file, i, err)
		}
		if obj == nil {
			return nil, fmt.Errorf("%s#%d: empty document", file, i)
		}
		out = append(out, Document{File: path.Base(file), Index: i, Object: obj})
	}
}

// Get walks nested mappings; nil when a key is missing.
func Get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// PodSpec is the pod template's spec of a workload (nil for other kinds).
func (d Document) PodSpec() map[string]any {
	switch d.Kind() {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		m, _ := Get(d.Object, "spec", "template", "spec").(map[string]any)
		return m
	}
	return nil
}

// Container is one container of a workload, as the tests need it.
type Container struct {
	Doc     Document
	Name    string
	Command []string
	Args    []string
	Env     []EnvVar
	Object  map[string]any
}

// EnvVar is one env entry; FromRef when its value comes from a
// ConfigMap, a Secret or a field (its value is then unknown here).
type EnvVar struct {
	Name, Value string
	FromRef     bool
}

// Binary is the base name of the command the container runs.
func (c Container) Binary() string {
	if len(c.Command) == 0 {
		return ""
	}
	return path.Base(c.Command[0])
}

// Containers lists the containers and init containers of a workload.
func (d Document) Containers() []Container {
	spec := d.PodSpec()
	if spec == nil {
		return nil
	}
	var out []Container
	for _, key := range []string{"initContainers", "containers"} {
		list, _ := spec[key].([]any)
		for _, item := range list {
			m, _ := item.(map[string]any)
			c := Container{Doc: d, Object: m, Command: stringList(m["command"]), Args: stringList(m["args"])}
			c.Name, _ = m["name"].(string)
			envs, _ := m["env"].([]any)
			for _, e := range envs {
				em, _ := e.(map[string]any)
				v := EnvVar{}
				v.Name, _ = em["name"].(string)
				v.Value, _ = em["value"].(string)
				_, v.FromRef = em["valueFrom"]
				c.Env = append(c.Env, v)
			}
			out = append(out, c)
		}
	}
	return out
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// ExpandedArgs are the args as the kubelet passes them: $(VAR) replaced by
// the container's env. A variable whose value comes from a reference
// becomes placeholder(name). A $(VAR) the container does not define is an
// error: the kubelet would pass it on literally.
func (c Container) ExpandedArgs(placeholder func(name string) string) ([]string, error) {
	env := map[string]EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	out := make([]string, len(c.Args))
	var missing []string
	for i, a := range c.Args {
		out[i] = varRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := varRef.FindStringSubmatch(ref)[1]
			e, ok := env[name]
			switch {
			case !ok:
				missing = append(missing, name)
				return ref
			case e.FromRef:
				return placeholder(name)
			}
			return e.Value
		})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s container %s: args name $(%s), which its env does not define", c.Doc, c.Name, strings.Join(missing, "), $("))
	}
	return out, nil
}
