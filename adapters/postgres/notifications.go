package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/production-line-monitor/plm/adapters/eventwire"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// SubscriptionRepository keeps the subscriptions and their deliveries (migration 0007).
type SubscriptionRepository struct{ db *DB }

var _ ports.SubscriptionRepository = (*SubscriptionRepository)(nil)

// NewSubscriptionRepository returns the subscription repository of db.
func NewSubscriptionRepository(db *DB) *SubscriptionRepository {
	return &SubscriptionRepository{db: db}
}

// DeliveryQueue hands the pending deliveries to the dispatchers of every process: a claim
// locks the rows it takes with FOR UPDATE SKIP LOCKED, so that concurrent claims never take
// the same delivery, nor wait for each other.
type DeliveryQueue struct{ db *DB }

var _ ports.DeliveryQueue = (*DeliveryQueue)(nil)

// NewDeliveryQueue returns the delivery queue of db.
func NewDeliveryQueue(db *DB) *DeliveryQueue { return &DeliveryQueue{db: db} }

// StatusLedger keeps the status last announced of each equipment, in equipment_status.
type StatusLedger struct{ db *DB }

var _ ports.StatusLedger = (*StatusLedger)(nil)

// NewStatusLedger returns the status ledger of db.
func NewStatusLedger(db *DB) *StatusLedger { return &StatusLedger{db: db} }

// enqueueSQL inserts, for each event ($1 ids, $2 types, $3 times, $4 wire forms) in order, a
// PENDING delivery to every subscription that wants its type, oldest subscription first,
// created and due at the event's time. The subscriptions are key-share locked, as the foreign
// key would lock them anyway: one deleted meanwhile is passed over rather than failing the
// insert (and with it the change that the deliveries report).
const enqueueSQL = `INSERT INTO deliveries (subscription_id, event_id, event_type, body, state, created_at, next_attempt_at)
	SELECT s.id, e.id, e.type, e.body, 'PENDING', e.at, e.at
	FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bytea[]) WITH ORDINALITY AS e (id, type, at, body, n)
	JOIN subscriptions s ON e.type = ANY (s.types)
	ORDER BY e.n, s.created_at, s.id
	FOR KEY SHARE OF s`

// enqueueArgs are the parameters of enqueueSQL for events.
func enqueueArgs(events []event.Event) ([]any, error) {
	ids, types := make([]string, len(events)), make([]string, len(events))
	times, bodies := make([]time.Time, len(events)), make([][]byte, len(events))
	for i, e := range events {
		body, err := eventwire.Encode(e)
		if err != nil {
			return nil, fmt.Errorf("enqueue deliveries: %w", err)
		}
		ids[i], types[i], times[i], bodies[i] = e.ID, string(e.Type), e.At, body
	}
	return []any{ids, types, times, bodies}, nil
}

const subscriptionColumns = "id, url, types, secret, created_at, failures, paused_until"

// scanSubscription reads a row of subscriptionColumns.
func scanSubscription(row pgx.Row) (ports.Subscription, error) {
	var (
		s      ports.Subscription
		types  []string
		paused pgtype.Timestamptz
	)
	if err := row.Scan(&s.ID, &s.URL, &types, &s.Secret, &s.CreatedAt, &s.Failures, &paused); err != nil {
		return ports.Subscription{}, err
	}
	s.Types = make([]event.Type, len(types))
	for i, t := range types {
		s.Types[i] = event.Type(t)
	}
	s.CreatedAt, s.PausedUntil = s.CreatedAt.UTC(), fromTimestamptz(paused)
	return s, nil
}

// fromTimestamptz reads NULL back as the zero time, and a time in UTC.
func fromTimestamptz(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

const deliveryColumns = `id, subscription_id, event_id, event_type, body, state, attempts, created_at, next_attempt_at,
	last_attempt_at, last_status, last_error, delivered_at`

// deliveryTargets are the scan targets of a row of deliveryColumns, and make the delivery.
func deliveryTargets() ([]any, func() ports.Delivery) {
	var (
		d                              ports.Delivery
		id                             int64
		typ, state                     string
		next, lastAttempt, deliveredAt pgtype.Timestamptz
	)
	targets := []any{&id, &d.SubscriptionID, &d.EventID, &typ, &d.Body, &state, &d.Attempts, &d.CreatedAt, &next,
		&lastAttempt, &d.LastStatus, &d.LastError, &deliveredAt}
	return targets, func() ports.Delivery {
		out := d
		out.ID, out.EventType, out.State = strconv.FormatInt(id, 10), event.Type(typ), ports.DeliveryState(state)
		out.CreatedAt = d.CreatedAt.UTC()
		out.NextAttemptAt, out.LastAttemptAt, out.DeliveredAt = fromTimestamptz(next), fromTimestamptz(lastAttempt),
			fromTimestamptz(deliveredAt)
		return out
	}
}

// deliveryID is the row id of a delivery id; false for an id that no delivery can have.
func deliveryID(id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n > 0
}

// CreateSubscription implements ports.SubscriptionRepository.
func (r *SubscriptionRepository) CreateSubscription(ctx context.Context, s ports.Subscription) error {
	types := make([]string, len(s.Types))
	for i, t := range s.Types {
		types[i] = string(t)
	}
	_, err := r.db.pool.Exec(ctx, `INSERT INTO subscriptions (`+subscriptionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		s.ID, s.URL, types, s.Secret, s.CreatedAt, s.Failures, nullTime(s.PausedUntil))
	return r.db.fail(ctx, "create subscription "+s.ID, err)
}

// Subscription implements ports.SubscriptionRepository.
func (r *SubscriptionRepository) Subscription(ctx context.Context, id string) (ports.Subscription, error) {
	s, err := scanSubscription(r.db.pool.QueryRow(ctx, "SELECT "+subscriptionColumns+" FROM subscriptions WHERE id = $1", id))
	if err != nil {
		return ports.Subscription{}, r.db.fail(ctx, "subscription "+id, err)
	}
	return s, nil
}

// Subscriptions implements ports.SubscriptionRepository.
func (r *SubscriptionRepository) Subscriptions(ctx context.Context) ([]ports.Subscription, error) {
	rows, err := r.db.pool.Query(ctx, "SELECT "+subscriptionColumns+" FROM subscriptions ORDER BY created_at, id")
	if err != nil {
		return nil, r.db.fail(ctx, "list subscriptions", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ports.Subscription, error) { return scanSubscription(row) })
	if err != nil {
		return nil, r.db.fail(ctx, "list subscriptions", err)
	}
	return out, nil
}

// DeleteSubscription implements ports.SubscriptionRepository; its deliveries go with it (ON
// DELETE CASCADE).
func (r *SubscriptionRepository) DeleteSubscription(ctx context.Context, id string) error {
	tag, err := r.db.pool.Exec(ctx, "DELETE FROM subscriptions WHERE id = $1", id)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return r.db.fail(ctx, "delete subscription "+id, err)
}

// Deliveries implements ports.SubscriptionRepository; the count and the page are read in one
// repeatable-read transaction, so that they agree.
func (r *SubscriptionRepository) Deliveries(ctx context.Context, q ports.DeliveryQuery) ([]ports.Delivery, int64, error) {
	where, args := "subscription_id = $1", []any{q.SubscriptionID}
	if len(q.States) > 0 {
		where, args = where+" AND state = ANY ($2::text[])", append(args, texts(q.States))
	}
	var total int64
	out := []ports.Delivery{}
	err := pgx.BeginTxFunc(ctx, r.db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var known bool
		err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE id = $1)", q.SubscriptionID).Scan(&known)
		if err != nil || !known {
			return cmp.Or(err, pgx.ErrNoRows)
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM deliveries WHERE "+where, args...).Scan(&total); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		if q.Limit <= 0 || int64(q.Offset) >= total {
			return nil
		}
		n := len(args)
		rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s FROM deliveries WHERE %s ORDER BY id DESC OFFSET $%d LIMIT $%d",
			deliveryColumns, where, n+1, n+2), append(args, max(q.Offset, 0), q.Limit)...)
		if err != nil {
			return err
		}
		targets, delivery := deliveryTargets()
		_, err = pgx.ForEachRow(rows, targets, func() error {
			out = append(out, delivery())
			return nil
		})
		return err
	})
	if err != nil {
		return nil, 0, r.db.fail(ctx, "deliveries of subscription "+q.SubscriptionID, err)
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
	targets, delivery := deliveryTargets()
	err := r.db.pool.QueryRow(ctx, `UPDATE deliveries SET state = 'PENDING', attempts = 0, next_attempt_at = $3
		WHERE id = $1 AND subscription_id = $2 AND state = 'DEAD' RETURNING `+deliveryColumns, n, subscriptionID, at).
		Scan(targets...)
	if err == nil {
		return delivery(), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return ports.Delivery{}, r.db.fail(ctx, op, err)
	}
	var state string
	err = r.db.pool.QueryRow(ctx, "SELECT state FROM deliveries WHERE id = $1 AND subscription_id = $2", n, subscriptionID).
		Scan(&state)
	if err != nil {
		return ports.Delivery{}, r.db.fail(ctx, op, err)
	}
	return ports.Delivery{}, fmt.Errorf("%s: it is %s: %w", op, state, ports.ErrConflict)
}

// claimSQL leases (until $2) the PENDING deliveries due at $1, oldest first, of subscriptions
// not paused at $1 and not in $3, at most $4. Rows that another claim holds are passed over
// (SKIP LOCKED); a row that another claim leased meanwhile is checked again once that claim
// commits, and passed over as no longer due.
const claimSQL = `WITH due AS (
		SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
		WHERE d.state = 'PENDING' AND d.next_attempt_at <= $1
			AND (s.paused_until IS NULL OR s.paused_until <= $1)
			AND d.subscription_id <> ALL ($3::text[])
		ORDER BY d.id
		LIMIT $4
		FOR UPDATE OF d SKIP LOCKED
	)
	UPDATE deliveries d SET next_attempt_at = $2
	FROM due, subscriptions s
	WHERE d.id = due.id AND s.id = d.subscription_id
	RETURNING d.id, d.subscription_id, d.event_id, d.event_type, d.body, d.state, d.attempts, d.created_at,
		d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.delivered_at,
		s.id, s.url, s.types, s.secret, s.created_at, s.failures, s.paused_until`

// Claim implements ports.DeliveryQueue, in one statement.
func (q *DeliveryQueue) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int, skip []string) ([]ports.ClaimedDelivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	if skip == nil {
		skip = []string{}
	}
	rows, err := q.db.pool.Query(ctx, claimSQL, now, now.Add(lease), skip, limit)
	if err != nil {
		return nil, q.db.fail(ctx, "claim deliveries", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ports.ClaimedDelivery, error) {
		targets, delivery := deliveryTargets()
		var (
			s      ports.Subscription
			types  []string
			paused pgtype.Timestamptz
		)
		targets = append(targets, &s.ID, &s.URL, &types, &s.Secret, &s.CreatedAt, &s.Failures, &paused)
		if err := row.Scan(targets...); err != nil {
			return ports.ClaimedDelivery{}, err
		}
		s.Types = make([]event.Type, len(types))
		for i, t := range types {
			s.Types[i] = event.Type(t)
		}
		s.CreatedAt, s.PausedUntil = s.CreatedAt.UTC(), fromTimestamptz(paused)
		return ports.ClaimedDelivery{Delivery: delivery(), Subscription: s}, nil
	})
	if err != nil {
		return nil, q.db.fail(ctx, "claim deliveries", err)
	}
	slices.SortFunc(out, func(a, b ports.ClaimedDelivery) int {
		x, _ := deliveryID(a.ID)
		y, _ := deliveryID(b.ID)
		return cmp.Compare(x, y)
	})
	return out, nil
}

// settleBreakerSQL stores the subscription's breaker ($1: the subscription, $2: the delivery),
// when the delivery is the subscription's. It comes first, so that settling locks the
// subscription before the delivery, as deleting a subscription does.
const settleBreakerSQL = `UPDATE subscriptions SET failures = $3, paused_until = $4
	WHERE id = $1 AND EXISTS (SELECT 1 FROM deliveries WHERE id = $2 AND subscription_id = $1 AND state = 'PENDING')`

// settleDeliverySQL records the attempt on the delivery ($1) of the subscription ($7).
const settleDeliverySQL = `UPDATE deliveries SET state = $2, attempts = attempts + 1, next_attempt_at = $3,
		last_attempt_at = $4, last_status = $5, last_error = $6,
		delivered_at = CASE WHEN $2 = 'DELIVERED' THEN $4 ELSE delivered_at END
	WHERE id = $1 AND subscription_id = $7 AND state = 'PENDING'`

// Settle implements ports.DeliveryQueue: two statements sent together in one round trip, which
// PostgreSQL runs as one implicit transaction.
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
	var batch pgx.Batch
	batch.Queue(settleBreakerSQL, o.SubscriptionID, n, o.Failures, nullTime(o.PausedUntil))
	batch.Queue(settleDeliverySQL, n, string(o.State), nullTime(o.NextAttemptAt), o.At, o.Status, o.Error, o.SubscriptionID)
	results := q.db.pool.SendBatch(ctx, &batch)
	_, err = results.Exec()
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = results.Exec()
	}
	if cerr := results.Close(); err == nil {
		err = cerr
	}
	if err == nil && tag.RowsAffected() == 0 {
		// Gone (pgx.ErrNoRows), or no longer PENDING.
		var state string
		if err = q.db.pool.QueryRow(ctx, "SELECT state FROM deliveries WHERE id = $1 AND subscription_id = $2",
			n, o.SubscriptionID).Scan(&state); err == nil {
			err = fmt.Errorf("it is %s: %w", state, ports.ErrConflict)
		}
	}
	return q.db.fail(ctx, op, err)
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
	_, err := q.db.pool.Exec(ctx, "UPDATE deliveries SET next_attempt_at = $1 WHERE id = ANY ($2::int8[]) AND state = 'PENDING'",
		until, ids)
	return q.db.fail(ctx, fmt.Sprintf("postpone %d deliveries", len(ids)), err)
}

// Announced implements ports.StatusLedger.
func (l *StatusLedger) Announced(ctx context.Context) (map[string]equipment.Status, error) {
	rows, err := l.db.pool.Query(ctx, "SELECT equipment_id, status FROM equipment_status")
	if err != nil {
		return nil, l.db.fail(ctx, "statuses announced", err)
	}
	out := make(map[string]equipment.Status)
	var id, status string
	_, err = pgx.ForEachRow(rows, []any{&id, &status}, func() error {
		out[id] = equipment.Status(status)
		return nil
	})
	if err != nil {
		return nil, l.db.fail(ctx, "statuses announced", err)
	}
	return out, nil
}

// firstStatusSQL records a first announcement: it does nothing when one was made.
const firstStatusSQL = `INSERT INTO equipment_status (equipment_id, status, changed_at) VALUES ($1, $2, $3)
	ON CONFLICT (equipment_id) DO NOTHING`

// nextStatusSQL records a change over the status it changes from ($4) only. Of two
// transactions making the same change, the second waits for the first, then finds the status
// changed and does nothing.
const nextStatusSQL = `UPDATE equipment_status SET status = $2, changed_at = $3 WHERE equipment_id = $1 AND status = $4`

// Announce implements ports.StatusLedger, in one transaction: each change is recorded by a
// statement that writes only over the status it changes from (sent together, in the order of
// their equipment, so that concurrent announcements lock rows in the same order; changes of
// one equipment keep their order), then the deliveries of those recorded are enqueued.
func (l *StatusLedger) Announce(ctx context.Context, events []event.Event) ([]event.Event, error) {
	if err := statusChanges(events); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, nil
	}
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		return cmp.Compare(events[i].Status.EquipmentID, events[j].Status.EquipmentID)
	})
	op := fmt.Sprintf("announce %d status changes", len(events))
	var recorded []event.Event
	err := pgx.BeginFunc(ctx, l.db.pool, func(tx pgx.Tx) error {
		var batch pgx.Batch
		for _, i := range order {
			e := events[i]
			if c := e.Status; c.Previous == "" {
				batch.Queue(firstStatusSQL, c.EquipmentID, string(c.Status), e.At)
			} else {
				batch.Queue(nextStatusSQL, c.EquipmentID, string(c.Status), e.At, string(c.Previous))
			}
		}
		results := tx.SendBatch(ctx, &batch)
		done := make([]bool, len(events))
		var err error
		for _, i := range order {
			var tag pgconn.CommandTag
			if tag, err = results.Exec(); err != nil {
				break
			}
			done[i] = tag.RowsAffected() > 0
		}
		if cerr := results.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("record the statuses: %w", err)
		}
		recorded = recorded[:0]
		for i, e := range events {
			if done[i] {
				recorded = append(recorded, e)
			}
		}
		if len(recorded) == 0 {
			return nil
		}
		args, err := enqueueArgs(recorded)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, enqueueSQL, args...)
		return err
	})
	if err != nil {
		return nil, l.db.fail(ctx, op, err)
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
