package chaincode

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// Limits on device records.
const (
	maxGroups         = 16
	maxAttributes     = 32
	maxAttributeValue = 256
	maxFirmware       = 64
	maxReason         = 256
)

// DeviceContract is the device registry: enrolment, lifecycle, keys and
// ownership transfer. Transactions are addressed as "device:<Tx>".
type DeviceContract struct {
	contractapi.Contract
	e *engines
}

// GetEvaluateTransactions tags the read-only transactions "evaluate" in the
// chaincode metadata.
func (c *DeviceContract) GetEvaluateTransactions() []string {
	return []string{"Get", "List", "History"}
}

// Enroll registers a device owned by the caller's org.
func (c *DeviceContract) Enroll(ctx contractapi.TransactionContextInterface, request string) (string, error) {
	var req api.EnrollRequest
	if err := decodeArg("enroll request", request, &req); err != nil {
		return "", err
	}
	return submit(c.e, ctx, func(t *txn) (*api.Device, *api.Event, error) { return t.enroll(req) })
}

// Get returns a device.
func (c *DeviceContract) Get(ctx contractapi.TransactionContextInterface, id string) (string, error) {
	return evaluate(c.e, ctx, func(t *txn) (*api.Device, error) { return t.readDevice(id) })
}

// List returns one page of devices by owner, type or group.
func (c *DeviceContract) List(ctx contractapi.TransactionContextInterface, query string) (string, error) {
	var q api.DeviceQuery
	if err := decodeArg("device query", query, &q); err != nil {
		return "", err
	}
	return evaluate(c.e, ctx, func(t *txn) (*api.DevicePage, error) { return t.listDevices(q) })
}

// Update changes a device's type, groups, attributes or firmware.
func (c *DeviceContract) Update(ctx contractapi.TransactionContextInterface, update string) (string, error) {
	var u api.DeviceUpdate
	if err := decodeArg("device update", update, &u); err != nil {
		return "", err
	}
	return submit(c.e, ctx, func(t *txn) (*api.Device, *api.Event, error) { return t.updateDevice(u) })
}

// RotateKey replaces a device's public key; the old key stays retrievable.
func (c *DeviceContract) RotateKey(ctx contractapi.TransactionContextInterface, id, publicKeyPEM string) (string, error) {
	return submit(c.e, ctx, func(t *txn) (*api.Device, *api.Event, error) { return t.rotateKey(id, publicKeyPEM) })
}

// Activate moves a provisioned or suspended device to active.
func (c *DeviceContract) Activate(ctx contractapi.TransactionContextInterface, id, reason string) (string, error) {
	return c.setStatus(ctx, id, api.StatusActive, reason)
}

// Suspend moves an active device to suspended (quarantine).
func (c *DeviceContract) Suspend(ctx contractapi.TransactionContextInterface, id, reason string) (string, error) {
	return c.setStatus(ctx, id, api.StatusSuspended, reason)
}

// Revoke ends a device's life: its key is no longer trusted. Final.
func (c *DeviceContract) Revoke(ctx contractapi.TransactionContextInterface, id, reason string) (string, error) {
	return c.setStatus(ctx, id, api.StatusRevoked, reason)
}

// Decommission retires a device. Final.
func (c *DeviceContract) Decommission(ctx contractapi.TransactionContextInterface, id, reason string) (string, error) {
	return c.setStatus(ctx, id, api.StatusDecommissioned, reason)
}

func (c *DeviceContract) setStatus(ctx contractapi.TransactionContextInterface, id string, to api.DeviceStatus, reason string) (string, error) {
	return submit(c.e, ctx, func(t *txn) (*api.Device, *api.Event, error) { return t.changeStatus(id, to, reason) })
}

// OfferTransfer offers a device to another org; it changes hands when that
// org's operator accepts.
func (c *DeviceContract) OfferTransfer(ctx contractapi.TransactionContextInterface, id, toMSPID string) (string, error) {
	return submit(c.e, ctx, func(t *txn) (*api.Device, *api.Event, error) { return t.offerTransfer(id, toMSPID) })
}

// AcceptTransfer takes ownership of a device offered to the caller's org.
func (c *DeviceContract) AcceptTransfer(ctx contractapi.TransactionContextInterface, id string) (string, error) {
	return submit(c.e, ctx, func(t *txn) (*api.Device, *api.Event, error) { return t.acceptTransfer(id) })
}

// CancelTransfer withdraws a pending transfer offer.
func (c *DeviceContract) CancelTransfer(ctx contractapi.TransactionContextInterface, id string) (string, error) {
	return submit(c.e, ctx, func(t *txn) (*api.Device, *api.Event, error) { return t.cancelTransfer(id) })
}

// History returns every committed version of a device record.
func (c *DeviceContract) History(ctx contractapi.TransactionContextInterface, id string) (string, error) {
	return evaluate(c.e, ctx, func(t *txn) ([]api.DeviceHistoryEntry, error) { return t.deviceHistory(id) })
}

// --- validation ---

func validateType(typ string) error {
	return invalidArg(reading.ValidateID("type", typ))
}

func validateGroups(groups []string) error {
	if len(groups) > maxGroups {
		return api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("groups: %d groups, the limit is %d", len(groups), maxGroups))
	}
	for i, g := range groups {
		if err := reading.ValidateID(fmt.Sprintf("groups[%d]", i), g); err != nil {
			return invalidArg(err)
		}
		if slices.Contains(groups[:i], g) {
			return api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("groups[%d]: group %q is listed twice", i, g))
		}
	}
	return nil
}

func validateAttributes(attrs map[string]string) error {
	if len(attrs) > maxAttributes {
		return api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("attributes: %d attributes, the limit is %d", len(attrs), maxAttributes))
	}
	// Sorted, so that every endorser reports the same first problem.
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		v := attrs[k]
		if err := reading.ValidateID("attributes key", k); err != nil {
			return invalidArg(err)
		}
		if len(v) > maxAttributeValue || !utf8.ValidString(v) {
			return api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("attributes[%q]: value must be UTF-8 of at most %d bytes", k, maxAttributeValue))
		}
	}
	return nil
}

func validateText(field, s string, limit int) error {
	if len(s) > limit || !utf8.ValidString(s) {
		return api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("%s must be UTF-8 of at most %d bytes (got %d bytes)", field, limit, len(s)))
	}
	return nil
}

func parseKey(pemText string) (*reading.PublicKey, error) {
	if len(pemText) > reading.MaxPublicKeyPEM {
		return nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("publicKey is %d bytes, the limit is %d", len(pemText), reading.MaxPublicKeyPEM))
	}
	k, err := reading.ParsePublicKey(pemText)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, "publicKey: "+err.Error()+" (expected a PEM \"PUBLIC KEY\" block with an ECDSA P-256 or Ed25519 key)")
	}
	return k, nil
}

func validateEnroll(req api.EnrollRequest) (*reading.PublicKey, error) {
	if err := reading.ValidateID("id", req.ID); err != nil {
		return nil, invalidArg(err)
	}
	if err := validateType(req.Type); err != nil {
		return nil, err
	}
	if err := validateGroups(req.Groups); err != nil {
		return nil, err
	}
	if err := validateAttributes(req.Attributes); err != nil {
		return nil, err
	}
	if err := validateText("firmware", req.Firmware, maxFirmware); err != nil {
		return nil, err
	}
	if err := validateEncryptionKey(req.EncryptionKey); err != nil {
		return nil, err
	}
	return parseKey(req.PublicKey)
}

// validateEncryptionKey accepts no key or a raw X25519 public key.
func validateEncryptionKey(raw []byte) error {
	if len(raw) == 0 {
		return nil
	}
	if _, err := reading.ParseEncryptionKey(raw); err != nil {
		return api.Errorf(api.CodeInvalidArgument, "encryptionKey: "+err.Error())
	}
	return nil
}

// --- storage ---

type deviceKeys struct {
	record string
	owner  string
	typ    string
	groups []string
}

func keysOf(d *api.Device) (deviceKeys, error) {
	var k deviceKeys
	var err error
	if k.record, err = compositeKey(kindDevice, d.ID); err != nil {
		return k, err
	}
	if k.owner, err = compositeKey(kindDeviceOwner, d.Owner, d.ID); err != nil {
		return k, err
	}
	if k.typ, err = compositeKey(kindDeviceType, d.Owner, d.Type, d.ID); err != nil {
		return k, err
	}
	for _, g := range d.Groups {
		gk, err := compositeKey(kindDeviceGroup, d.Owner, g, d.ID)
		if err != nil {
			return k, err
		}
		k.groups = append(k.groups, gk)
	}
	return k, nil
}

func (k deviceKeys) indexes() []string {
	return append([]string{k.owner, k.typ}, k.groups...)
}

// saveDevice writes the device record and restricts its endorsement to the
// owner org's peers. The owner alone can always change its device — suspend,
// revoke, cancel an offer — also while a transfer is offered (the offered
// org has no veto); accepting an offer creates the new owner's index keys,
// which needs the channel's endorsement policy, so both orgs take part.
func (t *txn) saveDevice(d *api.Device) error {
	d.UpdatedAt = t.now
	d.UpdatedByTx = t.id
	k, err := compositeKey(kindDevice, d.ID)
	if err != nil {
		return err
	}
	if err := putJSON(t.l, k, d); err != nil {
		return err
	}
	t.devices[d.ID] = d
	return restrictTo(t.l, []string{d.Owner}, k)
}

// writeIndexes writes the index keys of after that before did not have and
// deletes those before had that after has not.
func (t *txn) writeIndexes(before, after *api.Device) error {
	ak, err := keysOf(after)
	if err != nil {
		return err
	}
	var old []string
	if before != nil {
		bk, err := keysOf(before)
		if err != nil {
			return err
		}
		old = bk.indexes()
	}
	next := ak.indexes()
	for _, k := range old {
		if !slices.Contains(next, k) {
			if err := del(t.l, k); err != nil {
				return err
			}
		}
	}
	var added []string
	for _, k := range next {
		if !slices.Contains(old, k) {
			if err := putIndex(t.l, k); err != nil {
				return err
			}
			added = append(added, k)
		}
	}
	if len(added) == 0 {
		return nil
	}
	return restrictTo(t.l, []string{after.Owner}, added...)
}

func (t *txn) saveKey(d *api.Device) error {
	k, err := compositeKey(kindDeviceKey, d.ID, d.KeyID)
	if err != nil {
		return err
	}
	if err := t.l.PutState(k, []byte(d.PublicKey)); err != nil {
		return internal("writing device key", err)
	}
	return restrictTo(t.l, []string{d.Owner}, k)
}

// --- transactions ---

func (t *txn) enroll(req api.EnrollRequest) (*api.Device, *api.Event, error) {
	key, err := validateEnroll(req)
	if err != nil {
		return nil, nil, err
	}
	d := &api.Device{
		ID: req.ID, Owner: t.caller.MSPID, Type: req.Type, Groups: req.Groups, Attributes: req.Attributes,
		PublicKey: key.PEM(), KeyAlg: string(key.Algorithm()), KeyID: key.Fingerprint(), KeyVersion: 1,
		Firmware: req.Firmware, Status: api.StatusProvisioned, EnrolledBy: t.caller.ClientID, EnrolledAt: t.now,
		Private: req.Private, EncryptionKey: req.EncryptionKey,
	}
	if req.Activate {
		d.Status = api.StatusActive
	}
	if err := t.authorize(api.ActionDeviceManage, deviceResource(d)); err != nil {
		return nil, nil, err
	}
	if old, err := t.findDevice(req.ID); err != nil {
		return nil, nil, err
	} else if old != nil {
		return nil, nil, api.Errorf(api.CodeAlreadyExists, fmt.Sprintf("device %q is already enrolled (device ids are unique on the channel)", req.ID))
	}
	if err := t.saveDevice(d); err != nil {
		return nil, nil, err
	}
	if err := t.writeIndexes(nil, d); err != nil {
		return nil, nil, err
	}
	if err := t.saveKey(d); err != nil {
		return nil, nil, err
	}
	if err := t.ensurePolicySet(d.Owner); err != nil {
		return nil, nil, err
	}
	if d.Private {
		// Its replay state will start empty: it has no readings of the
		// first layout to look up (legacy.go).
		k, err := compositeKey(kindReplayNew, d.ID)
		if err != nil {
			return nil, nil, err
		}
		if err := putIndex(t.l, k); err != nil {
			return nil, nil, err
		}
	}
	return d, &api.Event{Type: api.EventDeviceEnrolled, Devices: []string{d.ID}}, nil
}

// readDevice returns a device the caller may read.
func (t *txn) readDevice(id string) (*api.Device, error) {
	d, err := t.device(id)
	if err != nil {
		return nil, err
	}
	if err := t.authorize(api.ActionDeviceRead, deviceResource(d)); err != nil {
		return nil, err
	}
	return d, nil
}

// manageDevice loads a device the caller may manage and that is not retired.
func (t *txn) manageDevice(id string) (*api.Device, error) {
	d, err := t.device(id)
	if err != nil {
		return nil, err
	}
	if err := t.authorize(api.ActionDeviceManage, deviceResource(d)); err != nil {
		return nil, err
	}
	if final(d.Status) {
		return nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("device %q is %s, which is final: it cannot be changed", id, d.Status))
	}
	return d, nil
}

func final(s api.DeviceStatus) bool {
	return s == api.StatusRevoked || s == api.StatusDecommissioned
}

func (t *txn) listDevices(q api.DeviceQuery) (*api.DevicePage, error) {
	size, err := pageSize(q.PageSize)
	if err != nil {
		return nil, err
	}
	// Types and groups are an org's own vocabulary: every listing is of one
	// owner's devices (the caller's org by default), so no other org's
	// records can be in it.
	owner := q.Owner
	if owner == "" {
		owner = t.caller.MSPID
	}
	if err := reading.ValidateID("owner", owner); err != nil {
		return nil, invalidArg(err)
	}
	kind, attrs := kindDeviceOwner, []string{owner}
	switch {
	case q.Type != "" && q.Group != "":
		return nil, api.Errorf(api.CodeInvalidArgument, "give at most one of type and group")
	case q.Type != "":
		if err := reading.ValidateID("type", q.Type); err != nil {
			return nil, invalidArg(err)
		}
		kind, attrs = kindDeviceType, []string{owner, q.Type}
	case q.Group != "":
		if err := reading.ValidateID("group", q.Group); err != nil {
			return nil, invalidArg(err)
		}
		kind, attrs = kindDeviceGroup, []string{owner, q.Group}
	}
	kvs, bookmark, err := scanPage(t.l, kind, attrs, size, q.Bookmark)
	if err != nil {
		return nil, err
	}
	page := &api.DevicePage{Devices: []api.Device{}, Bookmark: bookmark}
	for _, e := range kvs {
		d, skip, err := t.indexedDevice(e.Key, owner)
		if err != nil {
			return nil, err
		}
		if skip != nil {
			page.Skipped = append(page.Skipped, *skip)
			continue
		}
		dec, err := t.decide(t.caller, api.ActionDeviceRead, deviceResource(d), nil)
		if api.CodeOf(err) == api.CodeInconsistentRecord {
			page.Skipped = append(page.Skipped, api.SkippedRecord{ID: d.ID, Owner: owner, Reason: err.Error()})
			continue
		}
		if err != nil {
			return nil, err
		}
		if dec.Allowed {
			page.Devices = append(page.Devices, *d)
		}
	}
	return page, nil
}

// indexedDevice loads the device an index key of owner's points at. A record
// that is inconsistent or no longer the owner's is reported as skipped
// rather than failing the read: another org's broken record must never break
// a read of the caller.
func (t *txn) indexedDevice(indexKey, owner string) (*api.Device, *api.SkippedRecord, error) {
	id, err := lastAttr(indexKey)
	if err != nil {
		return nil, nil, err
	}
	d, err := t.device(id)
	if api.CodeOf(err) == api.CodeInconsistentRecord {
		return nil, &api.SkippedRecord{ID: id, Owner: owner, Reason: err.Error()}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if d.Owner != owner {
		return nil, &api.SkippedRecord{ID: id, Owner: owner, Reason: fmt.Sprintf("index %s points at a device of %s", readableKey(indexKey), d.Owner)}, nil
	}
	return d, nil, nil
}

func (t *txn) updateDevice(u api.DeviceUpdate) (*api.Device, *api.Event, error) {
	if err := reading.ValidateID("id", u.ID); err != nil {
		return nil, nil, invalidArg(err)
	}
	if u.Type == nil && u.Groups == nil && u.Attributes == nil && u.Firmware == nil && u.EncryptionKey == nil {
		return nil, nil, api.Errorf(api.CodeInvalidArgument, "nothing to update: set at least one of type, groups, attributes, firmware, encryptionKey")
	}
	if u.EncryptionKey != nil {
		if err := validateEncryptionKey(*u.EncryptionKey); err != nil {
			return nil, nil, err
		}
	}
	if u.Type != nil {
		if err := validateType(*u.Type); err != nil {
			return nil, nil, err
		}
	}
	if u.Groups != nil {
		if err := validateGroups(*u.Groups); err != nil {
			return nil, nil, err
		}
	}
	if u.Attributes != nil {
		if err := validateAttributes(*u.Attributes); err != nil {
			return nil, nil, err
		}
	}
	if u.Firmware != nil {
		if err := validateText("firmware", *u.Firmware, maxFirmware); err != nil {
			return nil, nil, err
		}
	}
	d, err := t.manageDevice(u.ID)
	if err != nil {
		return nil, nil, err
	}
	before := *d
	after := *d
	if u.Type != nil {
		after.Type = *u.Type
	}
	if u.Groups != nil {
		after.Groups = *u.Groups
	}
	if u.Attributes != nil {
		after.Attributes = *u.Attributes
	}
	if u.Firmware != nil {
		after.Firmware = *u.Firmware
	}
	if u.EncryptionKey != nil {
		after.EncryptionKey = *u.EncryptionKey
	}
	if err := t.writeIndexes(&before, &after); err != nil {
		return nil, nil, err
	}
	if err := t.saveDevice(&after); err != nil {
		return nil, nil, err
	}
	return &after, &api.Event{Type: api.EventDeviceUpdated, Devices: []string{after.ID}}, nil
}

func (t *txn) rotateKey(id, pemText string) (*api.Device, *api.Event, error) {
	if err := reading.ValidateID("id", id); err != nil {
		return nil, nil, invalidArg(err)
	}
	key, err := parseKey(pemText)
	if err != nil {
		return nil, nil, err
	}
	d, err := t.manageDevice(id)
	if err != nil {
		return nil, nil, err
	}
	if key.Fingerprint() == d.KeyID {
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("device %q already uses this key (version %d): a rotation needs a new key", id, d.KeyVersion))
	}
	kk, err := compositeKey(kindDeviceKey, id, key.Fingerprint())
	if err != nil {
		return nil, nil, err
	}
	if old, err := t.l.GetState(kk); err != nil {
		return nil, nil, internal("reading device key", err)
	} else if old != nil {
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("device %q used this key before: a rotation needs a key it never had", id))
	}
	next := *d
	next.PublicKey = key.PEM()
	next.KeyAlg = string(key.Algorithm())
	next.KeyID = key.Fingerprint()
	next.KeyVersion++
	if err := t.saveDevice(&next); err != nil {
		return nil, nil, err
	}
	if err := t.saveKey(&next); err != nil {
		return nil, nil, err
	}
	delete(t.keys, id)
	return &next, &api.Event{Type: api.EventDeviceKeyRotated, Devices: []string{id}}, nil
}

// transitionAllowed encodes provisioned → active ⇄ suspended → revoked |
// decommissioned; a device can be revoked or decommissioned from any
// non-final state (a stolen key must be revocable at once).
func transitionAllowed(from, to api.DeviceStatus) bool {
	switch from {
	case api.StatusProvisioned:
		return to == api.StatusActive || to == api.StatusRevoked || to == api.StatusDecommissioned
	case api.StatusActive:
		return to == api.StatusSuspended || to == api.StatusRevoked || to == api.StatusDecommissioned
	case api.StatusSuspended:
		return to == api.StatusActive || to == api.StatusRevoked || to == api.StatusDecommissioned
	}
	return false
}

// applyStatus moves a loaded device to another status and records it.
func (t *txn) applyStatus(d *api.Device, to api.DeviceStatus, reason, cause string) (*api.Device, api.StatusChange, error) {
	if !transitionAllowed(d.Status, to) {
		return nil, api.StatusChange{}, api.Errorf(api.CodeFailedPrecondition,
			fmt.Sprintf("device %q cannot go from %s to %s (lifecycle: provisioned → active ⇄ suspended → revoked | decommissioned)", d.ID, d.Status, to))
	}
	next := *d
	next.Status = to
	next.StatusNote = reason
	if final(to) {
		next.PendingTo = "" // a retired device cannot change hands
	}
	if err := t.saveDevice(&next); err != nil {
		return nil, api.StatusChange{}, err
	}
	return &next, api.StatusChange{Device: d.ID, Owner: d.Owner, From: d.Status, To: to, Reason: reason, Cause: cause}, nil
}

func (t *txn) changeStatus(id string, to api.DeviceStatus, reason string) (*api.Device, *api.Event, error) {
	if err := reading.ValidateID("id", id); err != nil {
		return nil, nil, invalidArg(err)
	}
	if err := validateText("reason", reason, maxReason); err != nil {
		return nil, nil, err
	}
	d, err := t.device(id)
	if err != nil {
		return nil, nil, err
	}
	if err := t.authorize(api.ActionDeviceManage, deviceResource(d)); err != nil {
		return nil, nil, err
	}
	next, change, err := t.applyStatus(d, to, reason, t.caller.ClientID)
	if err != nil {
		return nil, nil, err
	}
	ev := &api.Event{Type: api.EventDeviceStatus, Devices: []string{id}, StatusChanges: []api.StatusChange{change}}
	if final(to) {
		ev.Revocations = []string{id}
	}
	return next, ev, nil
}

func (t *txn) offerTransfer(id, to string) (*api.Device, *api.Event, error) {
	if err := reading.ValidateID("id", id); err != nil {
		return nil, nil, invalidArg(err)
	}
	if err := reading.ValidateID("toMSPID", to); err != nil {
		return nil, nil, invalidArg(err)
	}
	d, err := t.manageDevice(id)
	if err != nil {
		return nil, nil, err
	}
	if to == d.Owner {
		return nil, nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("device %q is already owned by %s", id, to))
	}
	next := *d
	next.PendingTo = to
	// The record stays under the owner's endorsement alone: the offered org
	// cannot block the owner from suspending, revoking or withdrawing.
	if err := t.saveDevice(&next); err != nil {
		return nil, nil, err
	}
	return &next, &api.Event{Type: api.EventDeviceTransfer, Devices: []string{id}}, nil
}

func (t *txn) acceptTransfer(id string) (*api.Device, *api.Event, error) {
	if err := reading.ValidateID("id", id); err != nil {
		return nil, nil, invalidArg(err)
	}
	d, err := t.device(id)
	if err != nil {
		return nil, nil, err
	}
	if d.PendingTo == "" || d.PendingTo != t.caller.MSPID {
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("device %q has no transfer offer to %s", id, t.caller.MSPID))
	}
	if final(d.Status) {
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("device %q is %s: it cannot change hands", id, d.Status))
	}
	next := *d
	next.Owner = t.caller.MSPID
	next.PendingTo = ""
	// The new owner must be allowed to manage the device as it will be.
	if err := t.authorize(api.ActionDeviceManage, deviceResource(&next)); err != nil {
		return nil, nil, err
	}
	if err := t.writeIndexes(d, &next); err != nil {
		return nil, nil, err
	}
	if err := t.saveDevice(&next); err != nil {
		return nil, nil, err
	}
	if err := t.ensurePolicySet(next.Owner); err != nil {
		return nil, nil, err
	}
	// The device's keys move under the new owner's endorsement too (its new
	// index keys were created for the new owner by writeIndexes).
	keys, err := scanAll(t.l, kindDeviceKey, id)
	if err != nil {
		return nil, nil, err
	}
	moved := make([]string, 0, len(keys))
	for _, e := range keys {
		moved = append(moved, e.Key)
	}
	if err := restrictTo(t.l, []string{next.Owner}, moved...); err != nil {
		return nil, nil, err
	}
	return &next, &api.Event{Type: api.EventDeviceTransfer, Devices: []string{id}}, nil
}

func (t *txn) cancelTransfer(id string) (*api.Device, *api.Event, error) {
	if err := reading.ValidateID("id", id); err != nil {
		return nil, nil, invalidArg(err)
	}
	d, err := t.manageDevice(id)
	if err != nil {
		return nil, nil, err
	}
	if d.PendingTo == "" {
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("device %q has no pending transfer offer", id))
	}
	next := *d
	next.PendingTo = ""
	if err := t.saveDevice(&next); err != nil {
		return nil, nil, err
	}
	return &next, &api.Event{Type: api.EventDeviceTransfer, Devices: []string{id}}, nil
}

func (t *txn) deviceHistory(id string) ([]api.DeviceHistoryEntry, error) {
	d, err := t.readDevice(id)
	if err != nil {
		return nil, err
	}
	k, err := compositeKey(kindDevice, d.ID)
	if err != nil {
		return nil, err
	}
	it, err := t.l.GetHistoryForKey(k)
	if err != nil {
		return nil, internal("reading device history", err)
	}
	defer closeQuery(it)
	out := []api.DeviceHistoryEntry{}
	for it.HasNext() {
		m, err := it.Next()
		if err != nil {
			return nil, internal("reading device history", err)
		}
		e := api.DeviceHistoryEntry{TxID: m.GetTxId(), Deleted: m.GetIsDelete()}
		if ts := m.GetTimestamp(); ts != nil {
			e.Timestamp = ts.AsTime().UTC()
		}
		if !e.Deleted && len(m.GetValue()) > 0 {
			var v api.Device
			if err := json.Unmarshal(m.GetValue(), &v); err != nil {
				return nil, internal("decoding device history", err)
			}
			e.Device = &v
		}
		out = append(out, e)
	}
	return out, nil
}
