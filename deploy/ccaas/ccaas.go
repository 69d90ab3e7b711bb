// Package ccaas writes chaincode-as-a-service packages: what a Fabric 2.5
// peer installs when the chaincode server runs on its own (a process, a VM,
// a Kubernetes Deployment) and the peer dials it.
//
// A package is a gzipped tar of two regular files: metadata.json
// ({"type":"ccaas","label":…}), which Fabric's ccaas external builder
// detects, and code.tar.gz, which holds connection.json: the server's
// address and TLS settings, read by the builder and then by the peer
// (core/container/externalbuilder.ChaincodeServerUserData). Its package ID
// is label:hex(sha256(package bytes)), as the peer computes it
// (core/chaincode/persistence.PackageID); the server must run with it.
//
// The same inputs always give the same bytes and so the same package ID.
package ccaas

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Type is the metadata.json type that Fabric's ccaas builder claims.
const Type = "ccaas"

// File names inside a package, as the peer and the builder look them up.
const (
	MetadataFile   = "metadata.json"
	CodeFile       = "code.tar.gz"
	ConnectionFile = "connection.json"
)

// DefaultDialTimeout is how long the peer waits to connect to the server.
const DefaultDialTimeout = 10 * time.Second

// ErrInvalid marks a package request (or a package) that Fabric would refuse.
var ErrInvalid = errors.New("invalid chaincode package")

// labelRE is Fabric's persistence.LabelRegexp: the peer refuses any other label.
var labelRE = regexp.MustCompile(`^[[:alnum:]][[:alnum:]_.+-]*$`)

// Metadata is metadata.json.
type Metadata struct {
	Type  string `json:"type"`
	Label string `json:"label"`
}

// Connection is connection.json, field for field as Fabric reads it.
// The PEM fields hold the PEM text itself, not a file name.
type Connection struct {
	Address            string `json:"address"`
	DialTimeout        string `json:"dial_timeout"`
	TLSRequired        bool   `json:"tls_required"`
	ClientAuthRequired bool   `json:"client_auth_required"`
	RootCert           string `json:"root_cert,omitempty"`   // CA of the server's TLS certificate
	ClientKey          string `json:"client_key,omitempty"`  // the peer's key for mutual TLS
	ClientCert         string `json:"client_cert,omitempty"` // the peer's certificate for mutual TLS
}

// Package is a built package and its ID.
type Package struct {
	Bytes []byte
	ID    string // label:sha256 of Bytes
	Label string
}

// ValidateLabel says whether a peer accepts label.
func ValidateLabel(label string) error {
	if !labelRE.MatchString(label) {
		return fmt.Errorf("%w: label %q: letters and digits and '.+-_', starting with a letter or digit (e.g. iotledger_1)", ErrInvalid, label)
	}
	return nil
}

// Validate checks what the builder and the peer would refuse later, at
// install or at the first call, so that the operator hears it now.
func (c Connection) Validate() error {
	host, port, err := net.SplitHostPort(c.Address)
	if err != nil || host == "" {
		return fmt.Errorf("%w: address %q: want host:port of the chaincode server (e.g. iotledger-cc.org1.svc:9999)", ErrInvalid, c.Address)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%w: address %q: port must be 1-65535", ErrInvalid, c.Address)
	}
	if c.DialTimeout != "" {
		if d, err := time.ParseDuration(c.DialTimeout); err != nil || d <= 0 {
			return fmt.Errorf("%w: dial timeout %q: want a positive duration such as 10s", ErrInvalid, c.DialTimeout)
		}
	}
	// The builder expands every string field as a Go template.
	for name, v := range map[string]string{"address": c.Address, "root_cert": c.RootCert, "client_key": c.ClientKey, "client_cert": c.ClientCert} {
		if strings.Contains(v, "{{") {
			return fmt.Errorf("%w: %s contains \"{{\", which the ccaas builder would expand as a template", ErrInvalid, name)
		}
	}
	if !c.TLSRequired {
		if c.ClientAuthRequired || c.RootCert != "" || c.ClientKey != "" || c.ClientCert != "" {
			return fmt.Errorf("%w: TLS settings given but TLS is not required: the peer would ignore them", ErrInvalid)
		}
		return nil
	}
	if err := onePEM("root_cert", c.RootCert, "CERTIFICATE"); err != nil {
		return err
	}
	if !c.ClientAuthRequired {
		if c.ClientKey != "" || c.ClientCert != "" {
			return fmt.Errorf("%w: a client key or certificate is given but client auth is not required", ErrInvalid)
		}
		return nil
	}
	if err := onePEM("client_cert", c.ClientCert, "CERTIFICATE"); err != nil {
		return err
	}
	return onePEM("client_key", c.ClientKey, "PRIVATE KEY")
}

// onePEM checks that s starts with a PEM block whose type ends in want.
func onePEM(field, s, want string) error {
	if s == "" {
		return fmt.Errorf("%w: %s is required with TLS", ErrInvalid, field)
	}
	b, _ := pem.Decode([]byte(s))
	if b == nil || !strings.HasSuffix(b.Type, want) {
		return fmt.Errorf("%w: %s is not PEM (want a %q block)", ErrInvalid, field, want)
	}
	return nil
}

// Build writes the package for a server at conn under label.
func Build(label string, conn Connection) (*Package, error) {
	if err := ValidateLabel(label); err != nil {
		return nil, err
	}
	if conn.DialTimeout == "" {
		conn.DialTimeout = DefaultDialTimeout.String()
	}
	if err := conn.Validate(); err != nil {
		return nil, err
	}
	// The peer's client key belongs in connection.json: the peer presents it to the server.
	connJSON, err := json.Marshal(conn) //nolint:gosec // G117: see above
	if err != nil {
		return nil, err
	}
	code, err := tarGz([]file{{ConnectionFile, connJSON}})
	if err != nil {
		return nil, err
	}
	meta, err := json.Marshal(Metadata{Type: Type, Label: label})
	if err != nil {
		return nil, err
	}
	pkg, err := tarGz([]file{{MetadataFile, meta}, {CodeFile, code}})
	if err != nil {
		return nil, err
	}
	return &Package{Bytes: pkg, ID: PackageID(label, pkg), Label: label}, nil
}

// PackageID is the ID a peer gives pkg when it is installed.
func PackageID(label string, pkg []byte) string {
	sum := sha256.Sum256(pkg)
	return label + ":" + hex.EncodeToString(sum[:])
}

// Parsed is a package read back.
type Parsed struct {
	Metadata   Metadata
	Connection Connection
	ID         string
}

// Parse reads a package as the peer and the ccaas builder do: a gzipped
// tar of regular files with metadata.json and code.tar.gz, a label the peer
// accepts, type ccaas, and connection.json at the root of code.tar.gz.
func Parse(pkg []byte) (*Parsed, error) {
	top, err := untarGz(pkg)
	if err != nil {
		return nil, err
	}
	metaJSON, ok := top[MetadataFile]
	if !ok {
		return nil, fmt.Errorf("%w: no %s", ErrInvalid, MetadataFile)
	}
	code, ok := top[CodeFile]
	if !ok {
		return nil, fmt.Errorf("%w: no %s", ErrInvalid, CodeFile)
	}
	var p Parsed
	if err := strictJSON(metaJSON, &p.Metadata); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, MetadataFile, err)
	}
	if !strings.EqualFold(p.Metadata.Type, Type) {
		return nil, fmt.Errorf("%w: type %q, not %q", ErrInvalid, p.Metadata.Type, Type)
	}
	if err := ValidateLabel(p.Metadata.Label); err != nil {
		return nil, err
	}
	inner, err := untarGz(code)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CodeFile, err)
	}
	connJSON, ok := inner[ConnectionFile]
	if !ok {
		return nil, fmt.Errorf("%w: no %s in %s", ErrInvalid, ConnectionFile, CodeFile)
	}
	if err := strictJSON(connJSON, &p.Connection); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, ConnectionFile, err)
	}
	if err := p.Connection.Validate(); err != nil {
		return nil, err
	}
	p.ID = PackageID(p.Metadata.Label, pkg)
	return &p, nil
}

func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

type file struct {
	name string
	data []byte
}

// tarGz writes files in the order given with fixed modes and times: the
// same input gives the same bytes, and so the same package ID.
func tarGz(files []file) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxEntry bounds what Parse reads of one entry: connection.json with
// three PEM blocks is a few KiB.
const maxEntry = 1 << 20

func untarGz(b []byte) (map[string][]byte, error) {
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: not gzip: %w", ErrInvalid, err)
	}
	tr := tar.NewReader(gz)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: tar: %w", ErrInvalid, err)
		}
		if h.Typeflag != tar.TypeReg {
			// The peer refuses anything but regular files at the top level.
			return nil, fmt.Errorf("%w: tar entry %s is not a regular file", ErrInvalid, h.Name)
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxEntry+1))
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %w", ErrInvalid, h.Name, err)
		}
		if len(data) > maxEntry {
			return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, h.Name, maxEntry)
		}
		out[h.Name] = data
	}
}
