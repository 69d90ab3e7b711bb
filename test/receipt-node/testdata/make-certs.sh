#!/bin/sh
# Makes the test PKI of fixture.js (test keys, never used anywhere else):
# OrdererMSP (P-384 root), Org1MSP (P-256 root, and a certificate without the
# CA basic constraint), Org2MSP (P-256 root and an
# intermediate CA that issues its members), Org3MSP (for three-org channels), and a
# rogue CA that imitates Org1's. Leaves carry the NodeOU of their role.
#   sh test/receipt-node/testdata/make-certs.sh
set -eu
cd "$(dirname "$0")"
rm -rf pki && mkdir pki && cd pki

ext() { # name, basicConstraints, keyUsage
  printf '[x]\nbasicConstraints=critical,%s\nkeyUsage=critical,%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$2" "$3" > "$1.ext"
}
ext ca 'CA:TRUE' 'keyCertSign,cRLSign,digitalSignature'
ext leaf 'CA:FALSE' 'digitalSignature'
ext notca 'CA:FALSE' 'keyCertSign,digitalSignature'

key() { # file, curve
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:"$2" -pkeyopt ec_param_enc:named_curve -out "$1.key" 2>/dev/null
}
root() { # name, curve, subject
  key "$1" "$2"
  openssl req -new -x509 -key "$1.key" -out "$1.pem" -days 7300 -subj "$3" -sha256 \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'
}
issue() { # name, curve, subject, issuer, extfile
  key "$1" "$2"
  openssl req -new -key "$1.key" -subj "$3" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial -days 3650 -sha256 \
    -extfile "$5.ext" -extensions x -out "$1.pem" 2>/dev/null
  rm "$1.csr"
}

root orderer-ca P-384 '/O=OrdererOrg/CN=ca.orderer.test'
issue orderer0 P-256 '/O=OrdererOrg/OU=orderer/CN=orderer0.test' orderer-ca leaf
issue orderer-client P-256 '/O=OrdererOrg/OU=client/CN=client.orderer.test' orderer-ca leaf

root org1-ca P-256 '/O=Org1/CN=ca.org1.test'
issue org1-peer0 P-256 '/O=Org1/OU=peer/CN=peer0.org1.test' org1-ca leaf
issue org1-client P-256 '/O=Org1/OU=client/CN=hub1' org1-ca leaf
issue org1-admin P-256 '/O=Org1/OU=admin/CN=Admin@org1.test' org1-ca leaf
issue org1-twoous P-256 '/O=Org1/OU=peer/OU=client/CN=twoous.org1.test' org1-ca leaf
issue org1-noou P-256 '/O=Org1/CN=noou.org1.test' org1-ca leaf
# A certificate that may sign certificates by its key usage but is no CA (CA:FALSE).
issue org1-notca P-256 '/O=Org1/CN=notca.org1.test' org1-ca notca

root org2-ca P-256 '/O=Org2/CN=ca.org2.test'
issue org2-ica P-256 '/O=Org2/CN=ica.org2.test' org2-ca ca
issue org2-peer0 P-256 '/O=Org2/OU=peer/CN=peer0.org2.test' org2-ica leaf
issue org2-client P-256 '/O=Org2/OU=client/CN=client.org2.test' org2-ica leaf

root org3-ca P-256 '/O=Org3/CN=ca.org3.test'
issue org3-peer0 P-256 '/O=Org3/OU=peer/CN=peer0.org3.test' org3-ca leaf

root rogue-ca P-256 '/O=Org1/CN=ca.org1.test'
issue rogue-peer P-256 '/O=Org1/OU=peer/CN=peer0.org1.test' rogue-ca leaf

rm -f ./*.ext ./*.srl
