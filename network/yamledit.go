package network

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlSetting is one change to a Fabric sample config file: the dotted path
// of a key and its new value (any value that YAML can encode).
type yamlSetting struct {
	Path  string
	Value any
}

// editYAML reads src, applies the settings in order and writes dst. Keys not
// touched keep Fabric's defaults and comments, so a node's config reads like
// the familiar sample with our values in place.
func editYAML(src, dst string, settings []yamlSetting) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("parse %s: %w", src, err)
	}
	for _, s := range settings {
		if err := setYAML(&doc, s.Path, s.Value); err != nil {
			return fmt.Errorf("%s: set %s: %w", src, s.Path, err)
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(4)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("encode %s: %w", dst, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode %s: %w", dst, err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}

// setYAML sets the value at a dotted key path, creating missing mappings.
func setYAML(doc *yaml.Node, path string, value any) error {
	n := doc
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			n.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
		}
		n = n.Content[0]
	}
	keys := strings.Split(path, ".")
	for i, k := range keys {
		if n.Kind != yaml.MappingNode {
			// A key that holds a scalar or null becomes a mapping.
			*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		var child *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == k {
				child = n.Content[j+1]
				break
			}
		}
		if child == nil {
			child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, child)
		}
		if i == len(keys)-1 {
			var v yaml.Node
			if err := v.Encode(value); err != nil {
				return err
			}
			v.HeadComment, v.LineComment, v.FootComment = child.HeadComment, child.LineComment, child.FootComment
			*child = v
			return nil
		}
		n = child
	}
	return nil
}
