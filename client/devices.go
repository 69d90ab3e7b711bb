package client

import (
	"context"
	"fmt"
	"slices"

	"github.com/iotledger/iotledger/chaincode/api"
)

// EnrollDevice enrolls a device owned by the caller's org.
func (c *Client) EnrollDevice(ctx context.Context, req api.EnrollRequest) (*api.Device, error) {
	arg, err := mustJSON(req)
	if err != nil {
		return nil, err
	}
	var d api.Device
	if err := c.submit(ctx, api.ContractDevice, "Enroll", &d, arg); err != nil {
		return nil, err
	}
	return &d, nil
}

// Device reads one device.
func (c *Client) Device(ctx context.Context, id string) (*api.Device, error) {
	var d api.Device
	if err := c.evaluate(ctx, api.ContractDevice, "Get", &d, id); err != nil {
		return nil, err
	}
	return &d, nil
}

// ListDevices reads one page of devices.
func (c *Client) ListDevices(ctx context.Context, q api.DeviceQuery) (*api.DevicePage, error) {
	arg, err := mustJSON(q)
	if err != nil {
		return nil, err
	}
	var p api.DevicePage
	if err := c.evaluate(ctx, api.ContractDevice, "List", &p, arg); err != nil {
		return nil, err
	}
	return &p, nil
}

// UpdateDevice changes a device's type, groups, attributes or firmware.
func (c *Client) UpdateDevice(ctx context.Context, u api.DeviceUpdate) (*api.Device, error) {
	arg, err := mustJSON(u)
	if err != nil {
		return nil, err
	}
	return c.submitDevice(ctx, "Update", arg)
}

// RotateDeviceKey replaces a device's public key (PEM); the old key stays in
// the device's history.
func (c *Client) RotateDeviceKey(ctx context.Context, id, publicKeyPEM string) (*api.Device, error) {
	return c.submitDevice(ctx, "RotateKey", id, publicKeyPEM)
}

// statusTx maps a target status to the transaction that reaches it.
var statusTx = map[api.DeviceStatus]string{
	api.StatusActive:         "Activate",
	api.StatusSuspended:      "Suspend",
	api.StatusRevoked:        "Revoke",
	api.StatusDecommissioned: "Decommission",
}

// SetDeviceStatus moves a device to active, suspended, revoked or
// decommissioned, recording the reason.
func (c *Client) SetDeviceStatus(ctx context.Context, id string, to api.DeviceStatus, reason string) (*api.Device, error) {
	tx, ok := statusTx[to]
	if !ok {
		return nil, fmt.Errorf("cannot set a device to status %q: use active, suspended, revoked or decommissioned", to)
	}
	return c.submitDevice(ctx, tx, id, reason)
}

// OfferTransfer offers a device to another org (toMSPID); the device moves
// when that org accepts.
func (c *Client) OfferTransfer(ctx context.Context, id, toMSPID string) (*api.Device, error) {
	return c.submitDevice(ctx, "OfferTransfer", id, toMSPID)
}

// AcceptTransfer accepts a device offered to the caller's org.
func (c *Client) AcceptTransfer(ctx context.Context, id string) (*api.Device, error) {
	return c.submitDevice(ctx, "AcceptTransfer", id)
}

// CancelTransfer withdraws an offer made by the device's owner.
func (c *Client) CancelTransfer(ctx context.Context, id string) (*api.Device, error) {
	return c.submitDevice(ctx, "CancelTransfer", id)
}

// DeviceHistory reads every committed version of a device, oldest first
// (the peer returns them newest first).
func (c *Client) DeviceHistory(ctx context.Context, id string) ([]api.DeviceHistoryEntry, error) {
	var h []api.DeviceHistoryEntry
	if err := c.evaluate(ctx, api.ContractDevice, "History", &h, id); err != nil {
		return nil, err
	}
	slices.SortStableFunc(h, func(a, b api.DeviceHistoryEntry) int { return a.Timestamp.Compare(b.Timestamp) })
	return h, nil
}

func (c *Client) submitDevice(ctx context.Context, tx string, args ...string) (*api.Device, error) {
	var d api.Device
	if err := c.submit(ctx, api.ContractDevice, tx, &d, args...); err != nil {
		return nil, err
	}
	return &d, nil
}
