package memory_test

import (
	"testing"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/ports/portstest"
)

func TestStoreContract(t *testing.T) {
	portstest.Run(t, func(*testing.T) portstest.Stores {
		s := memory.NewStore()
		return portstest.Stores{Readings: s, Anomalies: s, Equipment: s, Writer: s, Alarms: s.Alarms(), Maintenance: s.Maintenance(),
			Subscriptions: s.Subscriptions(), Deliveries: s.DeliveryQueue(), Ledger: s.StatusLedger()}
	})
}
