package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// render prints v as indented JSON with -o json, or as a table for people.
func (l *ledgerCmd) render(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	if l.g.json() {
		return writeIndentedJSON(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// writeIndentedJSON writes v as stable, two-space indented JSON.
func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// row writes one tab-separated table row.
func row(tw io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			_, _ = io.WriteString(tw, "\t")
		}
		_, _ = fmt.Fprint(tw, c)
	}
	_, _ = io.WriteString(tw, "\n")
}

// when formats a time for a table; the zero time is "-".
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// whenPtr formats an optional time.
func whenPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return when(*t)
}

// orDash shows "-" for an empty cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// joinOrDash joins a list for a cell.
func joinOrDash(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ",")
}

// attrs renders a map as sorted k=v pairs.
func attrs(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// values renders reading values as name=value[unit] pairs.
func values(vs []reading.Value) string {
	if len(vs) == 0 {
		return "-"
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		var val string
		switch {
		case v.Number != nil:
			val = fmt.Sprintf("%g", *v.Number)
		case v.String != nil:
			val = fmt.Sprintf("%q", *v.String)
		case v.Bool != nil:
			val = fmt.Sprintf("%t", *v.Bool)
		}
		parts[i] = v.Name + "=" + val + v.Unit
	}
	return strings.Join(parts, " ")
}

// shortID abbreviates a long hex identifier for a table cell.
func shortID(s string) string {
	if len(s) > 16 {
		return s[:12] + "…"
	}
	return orDash(s)
}

// clientName renders a Fabric client identity ID for a table.
func clientName(id string) string {
	if id == "" {
		return "-"
	}
	return api.ClientName(id)
}
