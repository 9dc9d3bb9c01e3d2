package agenttest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/avc-agent/avc/agent"
)

// Apps is an agent.SoftwareHandler over simulated flash with one package
// slot per Software Management instance: written bytes become durable
// only on Sync, and PowerCut loses what was not synced. Install records
// the package in its slot; Activate and Deactivate set its Active flag.
type Apps struct {
	// Slots are the instances' slots, made on first use.
	Slots map[uint16]*AppSlot
	// FailWrite, FailInstall, FailUninstall, FailActivate and
	// FailDeactivate inject handler errors.
	FailWrite, FailInstall, FailUninstall, FailActivate, FailDeactivate error
	// Calls logs the install-side calls in order: "install 0 2.0.0",
	// "uninstall 0 update", "activate 1", ...
	Calls []string
}

// AppSlot is one instance's storage.
type AppSlot struct {
	// Data is the stored package image, Synced how much of it is durable.
	Data   []byte
	Synced int
	// Opens records each StreamOpen's offset.
	Opens []int64
	// Installed is the package installed (nil: none); Active is set
	// between Activate and Deactivate.
	Installed *agent.SoftwarePackage
	Active    bool
	open      bool
}

// Slot returns instance inst's slot, making it when needed.
func (a *Apps) Slot(inst uint16) *AppSlot {
	if a.Slots == nil {
		a.Slots = map[uint16]*AppSlot{}
	}
	s, ok := a.Slots[inst]
	if !ok {
		s = &AppSlot{}
		a.Slots[inst] = s
	}
	return s
}

// StreamOpen implements agent.SoftwareHandler.
func (a *Apps) StreamOpen(inst uint16, uri string, offset int64) error {
	s := a.Slot(inst)
	s.Opens = append(s.Opens, offset)
	if offset > int64(len(s.Data)) {
		return fmt.Errorf("apps: slot %d holds %d bytes, resume wants %d", inst, len(s.Data), offset)
	}
	s.Data = s.Data[:offset]
	s.Synced = min(s.Synced, int(offset))
	s.open = true
	return nil
}

// StreamWrite implements agent.SoftwareHandler.
func (a *Apps) StreamWrite(inst uint16, p []byte) error {
	s := a.Slot(inst)
	if !s.open {
		return errors.New("apps: write without open")
	}
	if a.FailWrite != nil {
		return a.FailWrite
	}
	s.Data = append(s.Data, p...)
	return nil
}

// StreamFinish implements agent.SoftwareHandler.
func (a *Apps) StreamFinish(inst uint16) error {
	s := a.Slot(inst)
	s.open = false
	s.Synced = len(s.Data)
	return nil
}

// Sync implements agent.SoftwareSyncer.
func (a *Apps) Sync(inst uint16) error {
	s := a.Slot(inst)
	s.Synced = len(s.Data)
	return nil
}

// Reset implements agent.SoftwareHandler: the package goes, the
// installed software stays.
func (a *Apps) Reset(inst uint16) {
	s := a.Slot(inst)
	s.Data, s.Synced, s.open = nil, 0, false
}

// Install implements agent.SoftwareHandler: it checks the stored package
// against pkg and records it.
func (a *Apps) Install(pkg agent.SoftwarePackage) error {
	a.Calls = append(a.Calls, fmt.Sprintf("install %d %s", pkg.Instance, pkg.Version))
	if a.FailInstall != nil {
		return a.FailInstall
	}
	s := a.Slot(pkg.Instance)
	sum := sha256.Sum256(s.Data)
	if fmt.Sprintf("%x", sum[:]) != pkg.SHA256 || int64(len(s.Data)) != pkg.Size {
		return agent.ErrSoftwareIntegrity
	}
	p := pkg
	s.Installed, s.Active = &p, false
	return nil
}

// Uninstall implements agent.SoftwareHandler.
func (a *Apps) Uninstall(pkg agent.SoftwarePackage, forUpdate bool) error {
	how := "remove"
	if forUpdate {
		how = "update"
	}
	a.Calls = append(a.Calls, fmt.Sprintf("uninstall %d %s", pkg.Instance, how))
	if a.FailUninstall != nil {
		return a.FailUninstall
	}
	if !forUpdate {
		s := a.Slot(pkg.Instance)
		s.Installed, s.Active = nil, false
	}
	return nil
}

// Activate implements agent.SoftwareHandler.
func (a *Apps) Activate(pkg agent.SoftwarePackage) error {
	a.Calls = append(a.Calls, fmt.Sprintf("activate %d", pkg.Instance))
	if a.FailActivate != nil {
		return a.FailActivate
	}
	a.Slot(pkg.Instance).Active = true
	return nil
}

// Deactivate implements agent.SoftwareHandler.
func (a *Apps) Deactivate(pkg agent.SoftwarePackage) error {
	a.Calls = append(a.Calls, fmt.Sprintf("deactivate %d", pkg.Instance))
	if a.FailDeactivate != nil {
		return a.FailDeactivate
	}
	a.Slot(pkg.Instance).Active = false
	return nil
}

// PowerCut loses the bytes written since the last Sync in every slot, as
// a power cut would, and closes the streams.
func (a *Apps) PowerCut() {
	for _, s := range a.Slots {
		s.Data = s.Data[:s.Synced]
		s.open = false
	}
}

// Equal reports whether instance inst's slot holds img.
func (a *Apps) Equal(inst uint16, img []byte) bool { return bytes.Equal(a.Slot(inst).Data, img) }
