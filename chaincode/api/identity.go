package api

import (
	"encoding/base64"
	"strings"
)

// ClientName renders a Fabric client identity ID — base64 of
// "x509::<subject DN>::<issuer DN>", as the client-identity library returns
// it and the chaincode records it — as "<subject CN>@<issuer CN>" for people
// to read. Anything else is returned as is.
func ClientName(id string) string {
	raw, err := base64.StdEncoding.DecodeString(id)
	if err != nil {
		return id
	}
	rest, ok := strings.CutPrefix(string(raw), "x509::")
	if !ok {
		return id
	}
	subject, issuer, ok := strings.Cut(rest, "::")
	if !ok {
		return id
	}
	return commonName(subject) + "@" + commonName(issuer)
}

func commonName(dn string) string {
	for part := range strings.SplitSeq(dn, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "CN="); ok {
			return v
		}
	}
	return dn
}
