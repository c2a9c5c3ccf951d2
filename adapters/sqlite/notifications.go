package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/production-line-monitor/plm/adapters/eventwire"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// SubscriptionRepository keeps the subscriptions and their deliveries (migration 0004).
type SubscriptionRepository struct{ db *DB }

var _ ports.SubscriptionRepository = (*SubscriptionRepository)(nil)

// NewSubscriptionRepository returns the subscription repository of db.
func NewSubscriptionRepository(db *DB) *SubscriptionRepository {
	return &SubscriptionRepository{db: db}
}

// DeliveryQueue hands the pending deliveries to the dispatchers. The database serves one
// process, whose writes SQLite runs one at a time: a claim, one statement, is atomic.
type DeliveryQueue struct{ db *DB }

var _ ports.DeliveryQueue = (*DeliveryQueue)(nil)

// NewDeliveryQueue returns the delivery queue of db.
func NewDeliveryQueue(db *DB) *DeliveryQueue { return &DeliveryQueue{db: db} }

// StatusLedger keeps the status last announced of each equipment, in equipment_status.
type StatusLedger struct{ db *DB }

var _ ports.StatusLedger = (*StatusLedger)(nil)

// NewStatusLedger returns the status ledger of db.
func NewStatusLedger(db *DB) *StatusLedger { return &StatusLedger{db: db} }

// subscriptionRow is a row of subscriptions; Types is a JSON array.
type subscriptionRow struct {
	ID          string
	URL         string
	Types       string
	Secret      string
	CreatedAt   int64
	Failures    int64
	PausedUntil sql.NullInt64
}

const subscriptionColumns = "id, url, types, secret, created_at, failures, paused_until"

func (r subscriptionRow) subscription() (ports.Subscription, error) {
	var types []event.Type
	if err := json.Unmarshal([]byte(r.Types), &types); err != nil {
		return ports.Subscription{}, fmt.Errorf("read the types of subscription %s: %w", r.ID, err)
	}
	return ports.Subscription{ID: r.ID, URL: r.URL, Types: types, Secret: r.Secret, CreatedAt: fromMicros(r.CreatedAt),
		Failures: int(r.Failures), PausedUntil: fromNullMicros(r.PausedUntil)}, nil
}

// deliveryRow is a row of deliveries.
type deliveryRow struct {
	ID             int64
	SubscriptionID string
	EventID        string
	EventType      string
	Body           []byte
	State          string
	Attempts       int64
	CreatedAt      int64
	NextAttemptAt  sql.NullInt64
	LastAttemptAt  sql.NullInt64
	LastStatus     int64
	LastError      string
	DeliveredAt    sql.NullInt64
}

const deliveryColumns = `id, subscription_id, event_id, event_type, body, state, attempts, created_at, next_attempt_at,
	last_attempt_at, last_status, last_error, delivered_at`

func (r deliveryRow) delivery() ports.Delivery {
	return ports.Delivery{ID: strconv.FormatInt(r.ID, 10), SubscriptionID: r.SubscriptionID, EventID: r.EventID,
		EventType: event.Type(r.EventType), Body: r.Body, State: ports.DeliveryState(r.State), Attempts: int(r.Attempts),
		CreatedAt: fromMicros(r.CreatedAt), NextAttemptAt: fromNullMicros(r.NextAttemptAt),
		LastAttemptAt: fromNullMicros(r.LastAttemptAt), LastStatus: int(r.LastStatus), LastError: r.LastError,
		DeliveredAt: fromNullMicros(r.DeliveredAt)}
}

// deliveryID is the row id of a delivery id; false for an id that no delivery can have.
func deliveryID(id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n > 0
}

// jsonList writes a list as a JSON array, which json_each reads back: one parameter however
// long the list.
func jsonList[T any](list []T) string {
	if len(list) == 0 {
		return "[]"
	}
	b, err := json.Marshal(list)
	if err != nil {
		panic(fmt.Sprintf("a list of %T does not encode: %v", list, err)) // strings and integers always do
	}
	return string(b)
}

const enqueueCols = 7

// enqueue inserts, in tx, for each event in order, a PENDING delivery to every subscription
// that wants its type (oldest subscription first), created and due at the event's time.
// Subscriptions are few: they are read here, and only when there are events.
func enqueue(tx *gorm.DB, events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	var rows []subscriptionRow
	if err := tx.Raw("SELECT id, types FROM subscriptions ORDER BY created_at, id").Scan(&rows).Error; err != nil {
		return fmt.Errorf("read subscriptions: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	subs := make([]ports.Subscription, len(rows))
	for i, r := range rows {
		if err := json.Unmarshal([]byte(r.Types), &subs[i].Types); err != nil {
			return fmt.Errorf("read the types of subscription %s: %w", r.ID, err)
		}
		subs[i].ID = r.ID
	}
	var args []any
	for _, e := range events {
		body, err := eventwire.Encode(e)
		if err != nil {
			return fmt.Errorf("enqueue deliveries: %w", err)
		}
		for _, s := range subs {
			if s.Wants(e.Type) {
				args = append(args, s.ID, e.ID, string(e.Type), body, string(ports.DeliveryPending), micros(e.At), micros(e.At))
			}
		}
	}
	for chunk := range slices.Chunk(args, maxVariables/enqueueCols*enqueueCols) {
		q := multiRow("INSERT INTO deliveries (subscription_id, event_id, event_type, body, state, created_at, next_attempt_at)",
			enqueueCols, len(chunk)/enqueueCols, "")
		if err := tx.Exec(q, chunk...).Error; err != nil {
			return fmt.Errorf("enqueue %d deliveries: %w", len(chunk)/enqueueCols, err)
		}
	}
	return nil
}

// CreateSubscription implements ports.SubscriptionRepository.
func (r *SubscriptionRepository) CreateSubscription(ctx context.Context, s ports.Subscription) error {
	err := r.db.gorm.WithContext(ctx).Exec("INSERT INTO subscriptions ("+subscriptionColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		s.ID, s.URL, jsonList(s.Types), s.Secret, micros(s.CreatedAt), s.Failures, nullMicros(s.PausedUntil)).Error
	return r.db.fail(ctx, "create subscription "+s.ID, err)
}

// Subscription implements ports.SubscriptionRepository.
func (r *SubscriptionRepository) Subscription(ctx context.Context, id string) (ports.Subscription, error) {
	var row subscriptionRow
	err := r.db.gorm.WithContext(ctx).Table("subscriptions").Select(subscriptionColumns).Where("id = ?", id).Take(&row).Error
	if err != nil {
		return ports.Subscription{}, r.db.fail(ctx, "subscription "+id, err)
	}
	return row.subscription()
}

// Subscriptions implements ports.SubscriptionRepository.
func (r *SubscriptionRepository) Subscriptions(ctx context.Context) ([]ports.Subscription, error) {
	var rows []subscriptionRow
	err := r.db.gorm.WithContext(ctx).Table("subscriptions").Select(subscriptionColumns).Order("created_at, id").Find(&rows).Error
	if err != nil {
		return nil, r.db.fail(ctx, "list subscriptions", err)
	}
	out := make([]ports.Subscription, len(rows))
	for i, row := range rows {
		if out[i], err = row.subscription(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeleteSubscription implements ports.SubscriptionRepository; its deliveries go with it (ON
// DELETE CASCADE).
func (r *SubscriptionRepository) DeleteSubscription(ctx context.Context, id string) error {
	res := r.db.gorm.WithContext(ctx).Exec("DELETE FROM subscriptions WHERE id = ?", id)
	if res.Error == nil && res.RowsAffected == 0 {
		res.Error = gorm.ErrRecordNotFound
	}
	return r.db.fail(ctx, "delete subscription "+id, res.Error)
}

// Deliveries implements ports.SubscriptionRepository; the count and the page are read in one
// transaction.
func (r *SubscriptionRepository) Deliveries(ctx context.Context, q ports.DeliveryQuery) ([]ports.Delivery, int64, error) {
	var (
		total int64
		rows  []deliveryRow
	)
	matching := func(tx *gorm.DB) *gorm.DB {
		tx = tx.Table("deliveries").Where("subscription_id = ?", q.SubscriptionID)
		if len(q.States) > 0 {
			tx = tx.Where("state IN ?", strs(q.States))
		}
		return tx
	}
	err := r.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Table("subscriptions").Where("id = ?", q.SubscriptionID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return gorm.ErrRecordNotFound
		}
		if err := matching(tx).Count(&total).Error; err != nil {
			return fmt.Errorf("count: %w", err)
		}
		if q.Limit <= 0 || int64(q.Offset) >= total {
			return nil
		}
		return matching(tx).Select(deliveryColumns).Order("id DESC").Offset(max(q.Offset, 0)).Limit(q.Limit).Find(&rows).Error
	})
	if err != nil {
		return nil, 0, r.db.fail(ctx, "deliveries of subscription "+q.SubscriptionID, err)
	}
	out := make([]ports.Delivery, len(rows))
	for i, row := range rows {
		out[i] = row.delivery()
	}
	return out, total, nil
}

// Redeliver implements ports.SubscriptionRepository: the UPDATE makes the delivery PENDING
// only while it is DEAD; when it did not, the delivery is read to say why.
func (r *SubscriptionRepository) Redeliver(ctx context.Context, subscriptionID, id string, at time.Time) (ports.Delivery, error) {
	op := fmt.Sprintf("redeliver %s of subscription %s", id, subscriptionID)
	n, ok := deliveryID(id)
	if !ok {
		return ports.Delivery{}, fmt.Errorf("%s: %w", op, ports.ErrNotFound)
	}
	var rows []deliveryRow
	var states []string
	err := r.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Raw(`UPDATE deliveries SET state = 'PENDING', attempts = 0, next_attempt_at = ?
			WHERE id = ? AND subscription_id = ? AND state = 'DEAD' RETURNING `+deliveryColumns,
			micros(at), n, subscriptionID).Scan(&rows).Error
		if err != nil || len(rows) > 0 {
			return err
		}
		return tx.Raw("SELECT state FROM deliveries WHERE id = ? AND subscription_id = ?", n, subscriptionID).Scan(&states).Error
	})
	switch {
	case err != nil:
		return ports.Delivery{}, r.db.fail(ctx, op, err)
	case len(rows) > 0:
		return rows[0].delivery(), nil
	case len(states) == 0:
		return ports.Delivery{}, fmt.Errorf("%s: %w", op, ports.ErrNotFound)
	}
	return ports.Delivery{}, fmt.Errorf("%s: it is %s: %w", op, states[0], ports.ErrConflict)
}

// claimedRow is a delivery claimed (the columns of deliveryRow), with its subscription's.
type claimedRow struct {
	ID             int64
	SubscriptionID string
	EventID        string
	EventType      string
	Body           []byte
	State          string
	Attempts       int64
	CreatedAt      int64
	NextAttemptAt  sql.NullInt64
	LastAttemptAt  sql.NullInt64
	LastStatus     int64
	LastError      string
	DeliveredAt    sql.NullInt64
	SubURL         string
	SubTypes       string
	SubSecret      string
	SubCreatedAt   int64
	SubFailures    int64
	SubPausedUntil sql.NullInt64
}

// claimSQL leases (until the first parameter) the pending deliveries due at the second, oldest
// first, of subscriptions not paused at the third and not in the JSON array of the fourth, at
// most the fifth.
const claimSQL = `UPDATE deliveries SET next_attempt_at = ? WHERE id IN (
		SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
		WHERE d.state = 'PENDING' AND d.next_attempt_at <= ?
			AND (s.paused_until IS NULL OR s.paused_until <= ?)
			AND d.subscription_id NOT IN (SELECT value FROM json_each(?))
		ORDER BY d.id LIMIT ?)
	RETURNING id`

// Claim implements ports.DeliveryQueue: one UPDATE leases the deliveries, then they are read
// with their subscriptions, in the same transaction.
func (q *DeliveryQueue) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int, skip []string) ([]ports.ClaimedDelivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	var rows []claimedRow
	err := q.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var ids []int64
		if err := tx.Raw(claimSQL, micros(now.Add(lease)), micros(now), micros(now), jsonList(skip), limit).Scan(&ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		return tx.Raw(`SELECT d.id, d.subscription_id, d.event_id, d.event_type, d.body, d.state, d.attempts, d.created_at,
				d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.delivered_at,
				s.url AS sub_url, s.types AS sub_types, s.secret AS sub_secret, s.created_at AS sub_created_at,
				s.failures AS sub_failures, s.paused_until AS sub_paused_until
			FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
			WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.id`, jsonList(ids)).Scan(&rows).Error
	})
	if err != nil {
		return nil, q.db.fail(ctx, "claim deliveries", err)
	}
	out := make([]ports.ClaimedDelivery, len(rows))
	for i, row := range rows {
		sub, err := subscriptionRow{ID: row.SubscriptionID, URL: row.SubURL, Types: row.SubTypes, Secret: row.SubSecret,
			CreatedAt: row.SubCreatedAt, Failures: row.SubFailures, PausedUntil: row.SubPausedUntil}.subscription()
		if err != nil {
			return nil, err
		}
		d := deliveryRow{ID: row.ID, SubscriptionID: row.SubscriptionID, EventID: row.EventID, EventType: row.EventType,
			Body: row.Body, State: row.State, Attempts: row.Attempts, CreatedAt: row.CreatedAt,
			NextAttemptAt: row.NextAttemptAt, LastAttemptAt: row.LastAttemptAt, LastStatus: row.LastStatus,
			LastError: row.LastError, DeliveredAt: row.DeliveredAt}
		out[i] = ports.ClaimedDelivery{Delivery: d.delivery(), Subscription: sub}
	}
	return out, nil
}

// Settle implements ports.DeliveryQueue, in one transaction.
func (q *DeliveryQueue) Settle(ctx context.Context, o ports.DeliveryOutcome) error {
	op := "settle delivery " + o.DeliveryID
	o, err := o.Normalized()
	if err != nil {
		return err
	}
	n, ok := deliveryID(o.DeliveryID)
	if !ok {
		return fmt.Errorf("%s: %w", op, ports.ErrNotFound)
	}
	err = q.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_attempt_at = ?,
				last_status = ?, last_error = ?, delivered_at = CASE WHEN ? = 'DELIVERED' THEN ? ELSE delivered_at END
			WHERE id = ? AND subscription_id = ? AND state = 'PENDING'`,
			string(o.State), nullMicros(o.NextAttemptAt), micros(o.At), o.Status, o.Error, string(o.State), micros(o.At),
			n, o.SubscriptionID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return settledAlready(tx, n, o.SubscriptionID)
		}
		return tx.Exec("UPDATE subscriptions SET failures = ?, paused_until = ? WHERE id = ?",
			o.Failures, nullMicros(o.PausedUntil), o.SubscriptionID).Error
	})
	return q.db.fail(ctx, op, err)
}

// settledAlready tells why settling the delivery n of subscription sub changed nothing:
// ErrConflict when it is there but no longer PENDING, ErrNotFound when it is gone.
func settledAlready(tx *gorm.DB, n int64, sub string) error {
	var state string
	err := tx.Raw("SELECT state FROM deliveries WHERE id = ? AND subscription_id = ?", n, sub).Row().Scan(&state)
	if err != nil {
		return err // sql.ErrNoRows: gone
	}
	return fmt.Errorf("it is %s: %w", state, ports.ErrConflict)
}

// Postpone implements ports.DeliveryQueue.
func (q *DeliveryQueue) Postpone(ctx context.Context, deliveryIDs []string, until time.Time) error {
	ids := make([]int64, 0, len(deliveryIDs))
	for _, id := range deliveryIDs {
		if n, ok := deliveryID(id); ok {
			ids = append(ids, n)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	err := q.db.gorm.WithContext(ctx).Exec(`UPDATE deliveries SET next_attempt_at = ?
		WHERE state = 'PENDING' AND id IN (SELECT value FROM json_each(?))`, micros(until), jsonList(ids)).Error
	return q.db.fail(ctx, fmt.Sprintf("postpone %d deliveries", len(ids)), err)
}

// Announced implements ports.StatusLedger.
func (l *StatusLedger) Announced(ctx context.Context) (map[string]equipment.Status, error) {
	var rows []struct {
		EquipmentID string
		Status      string
	}
	if err := l.db.gorm.WithContext(ctx).Raw("SELECT equipment_id, status FROM equipment_status").Scan(&rows).Error; err != nil {
		return nil, l.db.fail(ctx, "statuses announced", err)
	}
	out := make(map[string]equipment.Status, len(rows))
	for _, r := range rows {
		out[r.EquipmentID] = equipment.Status(r.Status)
	}
	return out, nil
}

// Announce implements ports.StatusLedger: each change is recorded by a statement that writes
// only over the status it changes from (an INSERT that does nothing when there is one, for
// a first announcement), in order, then the deliveries of those recorded are enqueued, all
// in one transaction.
func (l *StatusLedger) Announce(ctx context.Context, events []event.Event) ([]event.Event, error) {
	if err := statusChanges(events); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, nil
	}
	var recorded []event.Event
	err := l.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		recorded = recorded[:0]
		for _, e := range events {
			c := e.Status
			var res *gorm.DB
			if c.Previous == "" {
				res = tx.Exec(`INSERT INTO equipment_status (equipment_id, status, changed_at) VALUES (?, ?, ?)
					ON CONFLICT (equipment_id) DO NOTHING`, c.EquipmentID, string(c.Status), micros(e.At))
			} else {
				res = tx.Exec("UPDATE equipment_status SET status = ?, changed_at = ? WHERE equipment_id = ? AND status = ?",
					string(c.Status), micros(e.At), c.EquipmentID, string(c.Previous))
			}
			if res.Error != nil {
				return fmt.Errorf("record the status of %s: %w", c.EquipmentID, res.Error)
			}
			if res.RowsAffected > 0 {
				recorded = append(recorded, e)
			}
		}
		return enqueue(tx, recorded)
	})
	if err != nil {
		return nil, l.db.fail(ctx, fmt.Sprintf("announce %d status changes", len(events)), err)
	}
	return recorded, nil
}

// statusChanges checks that every event is a status change.
func statusChanges(events []event.Event) error {
	for _, e := range events {
		if e.Type != event.StatusChanged || e.Status == nil || e.Status.EquipmentID == "" {
			return fmt.Errorf("announce event %s: %s is not a status change", e.ID, e.Type)
		}
	}
	return nil
}
