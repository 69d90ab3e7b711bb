package chaincode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// Limits on commands.
const (
	defaultCommandTTL = time.Hour
	maxCommandTTL     = 30 * 24 * time.Hour
	maxParamsBytes    = 4096
	maxGroupTargets   = 500
	// maxPrivateCommands bounds the private commands one listing returns.
	maxPrivateCommands = 500
)

// CommandContract issues commands to devices and tracks them through
// pending → delivered → acked | failed | expired. Transactions are addressed
// as "command:<Tx>".
type CommandContract struct {
	contractapi.Contract
	e *engines
}

// GetEvaluateTransactions tags the read-only transactions "evaluate" in the
// chaincode metadata.
func (c *CommandContract) GetEvaluateTransactions() []string {
	return []string{"Get", "List"}
}

// Send issues a command to one device or to every device of a group the
// caller may command.
func (c *CommandContract) Send(ctx contractapi.TransactionContextInterface, request string) (string, error) {
	var r api.CommandRequest
	if err := decodeArg("command request", request, &r); err != nil {
		return "", err
	}
	return submit(c.e, ctx, func(t *txn) ([]api.Command, *api.Event, error) { return t.sendCommand(r) })
}

// Get returns a command.
func (c *CommandContract) Get(ctx contractapi.TransactionContextInterface, id string) (string, error) {
	return evaluate(c.e, ctx, func(t *txn) (*api.Command, error) {
		cmd, d, err := t.loadCommand(id)
		if err != nil {
			return nil, err
		}
		if err := t.authorize(api.ActionDeviceRead, deviceResource(d)); err != nil {
			return nil, err
		}
		return cmd, nil
	})
}

// List returns one page of a device's commands, optionally of one status.
func (c *CommandContract) List(ctx contractapi.TransactionContextInterface, query string) (string, error) {
	var q api.CommandQuery
	if err := decodeArg("command query", query, &q); err != nil {
		return "", err
	}
	return evaluate(c.e, ctx, func(t *txn) (*api.CommandPage, error) { return t.listCommands(q) })
}

// MarkDelivered records that a hub handed a pending command to its device.
func (c *CommandContract) MarkDelivered(ctx contractapi.TransactionContextInterface, id string) (string, error) {
	return submit(c.e, ctx, func(t *txn) (*api.Command, *api.Event, error) { return t.markDelivered(id) })
}

// Ack records the device's signed answer to a command.
func (c *CommandContract) Ack(ctx contractapi.TransactionContextInterface, envelope string) (string, error) {
	env, err := reading.ParseEnvelope([]byte(envelope))
	if err != nil {
		return "", invalidArg(err)
	}
	return submit(c.e, ctx, func(t *txn) (*api.Command, *api.Event, error) { return t.ackCommand(env) })
}

// Expire marks a command that outlived its TTL as expired; anyone may call it.
func (c *CommandContract) Expire(ctx contractapi.TransactionContextInterface, id string) (string, error) {
	return submit(c.e, ctx, func(t *txn) (*api.Command, *api.Event, error) { return t.expireCommand(id) })
}

// validateParams accepts nothing or a JSON object.
func validateParams(field string, p json.RawMessage) error {
	if len(p) == 0 {
		return nil
	}
	if len(p) > maxParamsBytes {
		return api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("%s is %d bytes, the limit is %d", field, len(p), maxParamsBytes))
	}
	trimmed := bytes.TrimSpace(p)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return api.Errorf(api.CodeInvalidArgument, field+" must be a JSON object")
	}
	return nil
}

func commandTTL(seconds int64) (time.Duration, error) {
	if seconds == 0 {
		return defaultCommandTTL, nil
	}
	if seconds < 0 || seconds > int64(maxCommandTTL/time.Second) {
		return 0, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("ttlSeconds %d is out of range: use 1..%d (0 means %d)",
			seconds, int64(maxCommandTTL/time.Second), int64(defaultCommandTTL/time.Second)))
	}
	return time.Duration(seconds) * time.Second, nil
}

// newCommand writes a pending command for a device. A command issued in a
// private telemetry batch is kept where the batch keeps its records.
func (t *txn) newCommand(d *api.Device, name string, params json.RawMessage, ttl time.Duration, issuedBy string) (api.Command, error) {
	cmd := api.Command{
		ID: fmt.Sprintf("%s-%d", t.id, t.commandNo), Device: d.ID, Owner: d.Owner, Name: name, Params: params,
		Status: api.CommandPending, IssuedBy: issuedBy, IssuedAt: t.now, ExpiresAt: t.now.Add(ttl),
		Private: t.private != "" && t.private == d.Owner,
	}
	t.commandNo++
	if err := t.saveCommand(&cmd, true); err != nil {
		return api.Command{}, err
	}
	return cmd, nil
}

func (t *txn) saveCommand(cmd *api.Command, created bool) error {
	k, err := compositeKey(kindCommand, cmd.Device, cmd.ID)
	if err != nil {
		return err
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return internal("encoding command", err)
	}
	// A private command lives in its owner's implicit collection, whose
	// writes the owner's endorsement policy governs: no key-level policy.
	put := func(key string, v []byte) error {
		if cmd.Private {
			if err := t.l.PutPrivateData(implicitCollection(cmd.Owner), key, v); err != nil {
				return internal("writing private data", err)
			}
			return nil
		}
		if err := t.l.PutState(key, v); err != nil {
			return internal("writing world state", err)
		}
		return nil
	}
	if err := put(k, b); err != nil {
		return err
	}
	if !created {
		return nil
	}
	ik, err := compositeKey(kindCommandID, cmd.ID)
	if err != nil {
		return err
	}
	if err := put(ik, []byte(cmd.Device)); err != nil {
		return err
	}
	if cmd.Private {
		return nil
	}
	return restrictTo(t.l, []string{cmd.Owner}, k, ik)
}

func (t *txn) sendCommand(r api.CommandRequest) ([]api.Command, *api.Event, error) {
	if (r.Device == "") == (r.Group == "") {
		return nil, nil, api.Errorf(api.CodeInvalidArgument, "give exactly one of device and group")
	}
	if r.Owner != "" && r.Group == "" {
		return nil, nil, api.Errorf(api.CodeInvalidArgument, "owner names the org of a group: give it with group, not with device")
	}
	if err := reading.ValidateID("name", r.Name); err != nil {
		return nil, nil, invalidArg(err)
	}
	if err := validateParams("params", r.Params); err != nil {
		return nil, nil, err
	}
	ttl, err := commandTTL(r.TTLSeconds)
	if err != nil {
		return nil, nil, err
	}
	var targets []*api.Device
	if r.Device != "" {
		d, err := t.device(r.Device)
		if err != nil {
			return nil, nil, err
		}
		if err := t.authorize(api.ActionDeviceCommand, deviceResource(d)); err != nil {
			return nil, nil, err
		}
		if final(d.Status) {
			return nil, nil, api.Errorf(api.CodeDeviceInactive, fmt.Sprintf("device %q is %s: it takes no more commands", d.ID, d.Status))
		}
		targets = []*api.Device{d}
	} else {
		if targets, err = t.commandableMembers(r.Owner, r.Group); err != nil {
			return nil, nil, err
		}
	}
	cmds := make([]api.Command, 0, len(targets))
	devices := make([]string, 0, len(targets))
	for _, d := range targets {
		cmd, err := t.newCommand(d, r.Name, r.Params, ttl, t.caller.ClientID)
		if err != nil {
			return nil, nil, err
		}
		cmds = append(cmds, cmd)
		devices = append(devices, d.ID)
	}
	return cmds, &api.Event{Type: api.EventCommandIssued, Devices: devices, Commands: cmds}, nil
}

// commandableMembers lists the devices of owner's group (in key order; owner
// defaults to the caller's org) that are not retired and that the caller may
// command. Members the caller may not command are left out rather than
// refusing the whole command, and inconsistent records are skipped.
func (t *txn) commandableMembers(owner, group string) ([]*api.Device, error) {
	if owner == "" {
		owner = t.caller.MSPID
	}
	if err := reading.ValidateID("owner", owner); err != nil {
		return nil, invalidArg(err)
	}
	if err := reading.ValidateID("group", group); err != nil {
		return nil, invalidArg(err)
	}
	kvs, err := scanAll(t.l, kindDeviceGroup, owner, group)
	if err != nil {
		return nil, err
	}
	var out []*api.Device
	denied := 0
	for _, e := range kvs {
		d, skip, err := t.indexedDevice(e.Key, owner)
		if err != nil {
			return nil, err
		}
		if skip != nil || final(d.Status) {
			continue
		}
		dec, err := t.decide(t.caller, api.ActionDeviceCommand, deviceResource(d), nil)
		if err != nil {
			return nil, err
		}
		if !dec.Allowed {
			denied++
			continue
		}
		out = append(out, d)
	}
	switch {
	case len(out) > maxGroupTargets:
		return nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("group %q has %d devices to command, the limit per transaction is %d", group, len(out), maxGroupTargets))
	case len(out) == 0 && denied > 0:
		return nil, api.Errorf(api.CodeAccessDenied, fmt.Sprintf("%s (%s) may not command any device of group %q of %s", t.callerName(), t.caller.MSPID, group, owner))
	case len(out) == 0:
		return nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("group %q of %s has no device that can take commands", group, owner))
	}
	return out, nil
}

// loadCommand finds a command by id, and its device: in world state, or
// for a command of a private batch in the caller's org's implicit
// collection. The command is believed only where its record, its index and
// its device agree.
func (t *txn) loadCommand(id string) (*api.Command, *api.Device, error) {
	if err := reading.ValidateID("command id", id); err != nil {
		return nil, nil, invalidArg(err)
	}
	ik, err := compositeKey(kindCommandID, id)
	if err != nil {
		return nil, nil, err
	}
	get := func(key string) ([]byte, error) {
		b, err := t.l.GetState(key)
		if err != nil {
			return nil, internal("reading world state", err)
		}
		return b, nil
	}
	dev, err := get(ik)
	if err != nil {
		return nil, nil, err
	}
	private := false
	if dev == nil {
		// Not public: perhaps a private command of the caller's org. A peer
		// outside that org cannot read it, which is as good as absent.
		if b, err := t.l.GetPrivateData(implicitCollection(t.caller.MSPID), ik); err == nil && b != nil {
			dev, private = b, true
			get = func(key string) ([]byte, error) { return t.ownPrivate(key, "command "+id) }
		}
	}
	if dev == nil {
		return nil, nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("command %q does not exist", id))
	}
	k, err := compositeKey(kindCommand, string(dev), id)
	if err != nil {
		return nil, nil, err
	}
	b, err := get(k)
	if err != nil {
		return nil, nil, err
	}
	name := "command record " + readableKey(k)
	if b == nil {
		return nil, nil, inconsistent(name, "is indexed but not stored")
	}
	var cmd api.Command
	if err := json.Unmarshal(b, &cmd); err != nil {
		return nil, nil, inconsistent(name, "cannot be decoded: "+err.Error())
	}
	if cmd.ID != id || cmd.Device != string(dev) || cmd.Private != private {
		return nil, nil, inconsistent(name, fmt.Sprintf("says it is command %q of device %q", cmd.ID, cmd.Device))
	}
	d, err := t.device(cmd.Device)
	if err != nil {
		return nil, nil, err
	}
	if cmd.Owner != d.Owner && !private {
		// A public command's key-level policy is its owner's, set when it
		// was issued; a command of a device that changed hands since keeps
		// its issuer's owner.
		ep, err := t.l.GetStateValidationParameter(k)
		if err != nil {
			return nil, nil, internal("reading key endorsement policy", err)
		}
		want, err := endorsementPolicy(cmd.Owner)
		if err != nil {
			return nil, nil, err
		}
		if !bytes.Equal(ep, want) {
			return nil, nil, inconsistent(name, fmt.Sprintf("claims owner %s, but its key-level endorsement policy names %s", cmd.Owner, describeEndorsers(ep)))
		}
	}
	return &cmd, d, nil
}

func (t *txn) listCommands(q api.CommandQuery) (*api.CommandPage, error) {
	size, err := pageSize(q.PageSize)
	if err != nil {
		return nil, err
	}
	switch q.Status {
	case "", api.CommandPending, api.CommandDelivered, api.CommandAcked, api.CommandFailed, api.CommandExpired:
	default:
		return nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("status %q is not a command status (pending, delivered, acked, failed, expired)", q.Status))
	}
	d, err := t.readDevice(q.Device)
	if err != nil {
		return nil, err
	}
	kvs, bookmark, err := scanPage(t.l, kindCommand, []string{d.ID}, size, q.Bookmark)
	if err != nil {
		return nil, err
	}
	page := &api.CommandPage{Commands: []api.Command{}, Bookmark: bookmark}
	if q.Bookmark == "" && t.caller.MSPID == d.Owner {
		// Commands rules issued in private batches (to any device of the
		// batch's org) are in the owner's implicit collection; they come
		// with the first page.
		priv, err := t.privateCommands(d.ID)
		if err != nil {
			return nil, err
		}
		kvs = append(priv, kvs...)
	}
	for _, e := range kvs {
		var cmd api.Command
		if err := json.Unmarshal(e.Value, &cmd); err != nil {
			return nil, inconsistent("command record "+readableKey(e.Key), "cannot be decoded: "+err.Error())
		}
		if q.Status == "" || cmd.Status == q.Status {
			page.Commands = append(page.Commands, cmd)
		}
	}
	return page, nil
}

// privateCommands reads a private device's commands from the caller's org's
// implicit collection, at most maxPrivateCommands of them.
func (t *txn) privateCommands(device string) ([]kv, error) {
	org := t.caller.MSPID
	// A range over composite keys is refused by Fabric; a partial composite
	// key query is the way to read one device's commands.
	it, err := t.l.GetPrivateDataByPartialCompositeKey(implicitCollection(org), kindCommand, []string{device})
	if err != nil {
		return nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("the commands of private device %s are in the private data of %s, which this peer cannot read (%v): evaluate on a peer of %s", device, org, err, org))
	}
	defer closeQuery(it)
	var out []kv
	for it.HasNext() && len(out) < maxPrivateCommands {
		r, err := it.Next()
		if err != nil {
			return nil, internal("iterating private data", err)
		}
		out = append(out, kv{Key: r.GetKey(), Value: r.GetValue()})
	}
	return out, nil
}

func (t *txn) markDelivered(id string) (*api.Command, *api.Event, error) {
	cmd, d, err := t.loadCommand(id)
	if err != nil {
		return nil, nil, err
	}
	if err := t.authorize(api.ActionCommandDeliver, deviceResource(d)); err != nil {
		return nil, nil, err
	}
	if cmd.Status != api.CommandPending {
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("command %q is %s, only a pending command can be delivered", id, cmd.Status))
	}
	if t.now.After(cmd.ExpiresAt) {
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("command %q expired at %s: call command:Expire", id, cmd.ExpiresAt.Format(time.RFC3339)))
	}
	now := t.now
	cmd.Status = api.CommandDelivered
	cmd.DeliveredBy = t.caller.ClientID
	cmd.DeliveredAt = &now
	if err := t.saveCommand(cmd, false); err != nil {
		return nil, nil, err
	}
	return cmd, &api.Event{Type: api.EventCommandDelivered, Devices: []string{cmd.Device}, Commands: []api.Command{*cmd}}, nil
}

// parseAck checks an ack envelope's structure and payload with the parser
// the hub uses too (one result limit, reading.MaxAckResultBytes).
func parseAck(env reading.Envelope) (api.AckPayload, error) {
	a, err := reading.ParseAck(env)
	if err != nil {
		return a, invalidArg(err)
	}
	return a, nil
}

func (t *txn) ackCommand(env reading.Envelope) (*api.Command, *api.Event, error) {
	a, err := parseAck(env)
	if err != nil {
		return nil, nil, err
	}
	cmd, d, err := t.loadCommand(a.Command)
	if err != nil {
		return nil, nil, err
	}
	if cmd.Device != a.Device {
		return nil, nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("command %q is for device %q, not %q", cmd.ID, cmd.Device, a.Device))
	}
	if err := t.authorize(api.ActionCommandDeliver, deviceResource(d)); err != nil {
		return nil, nil, err
	}
	if final(d.Status) {
		return nil, nil, api.Errorf(api.CodeDeviceInactive, fmt.Sprintf("device %q is %s: its signatures are no longer accepted", d.ID, d.Status))
	}
	key, err := t.deviceKey(d)
	if err != nil {
		return nil, nil, err
	}
	if err := key.Verify(reading.Message(reading.DomainAck, env.Payload), env.Signature); err != nil {
		return nil, nil, api.Errorf(api.CodeBadSignature, fmt.Sprintf("ack of command %q: signature does not verify with the key enrolled for device %q (key version %d)", cmd.ID, d.ID, d.KeyVersion))
	}
	if cmd.Status != api.CommandPending && cmd.Status != api.CommandDelivered {
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("command %q is already %s", cmd.ID, cmd.Status))
	}
	if t.now.After(cmd.ExpiresAt) {
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("command %q expired at %s: call command:Expire", cmd.ID, cmd.ExpiresAt.Format(time.RFC3339)))
	}
	now := t.now
	cmd.Status = a.Status
	cmd.Result = a.Result
	cmd.CompletedAt = &now
	cmd.CompletedByTx = t.id
	if err := t.saveCommand(cmd, false); err != nil {
		return nil, nil, err
	}
	return cmd, &api.Event{Type: api.EventCommandCompleted, Devices: []string{cmd.Device}, Commands: []api.Command{*cmd}}, nil
}

func (t *txn) expireCommand(id string) (*api.Command, *api.Event, error) {
	cmd, _, err := t.loadCommand(id)
	if err != nil {
		return nil, nil, err
	}
	if cmd.Status != api.CommandPending && cmd.Status != api.CommandDelivered {
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("command %q is already %s", id, cmd.Status))
	}
	if !t.now.After(cmd.ExpiresAt) {
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("command %q expires at %s, it is still valid at the transaction time %s",
			id, cmd.ExpiresAt.Format(time.RFC3339), t.now.Format(time.RFC3339)))
	}
	now := t.now
	cmd.Status = api.CommandExpired
	cmd.CompletedAt = &now
	cmd.CompletedByTx = t.id
	if err := t.saveCommand(cmd, false); err != nil {
		return nil, nil, err
	}
	return cmd, &api.Event{Type: api.EventCommandCompleted, Devices: []string{cmd.Device}, Commands: []api.Command{*cmd}}, nil
}
