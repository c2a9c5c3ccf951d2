package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	validation "github.com/go-ozzo/ozzo-validation/v4"
	"github.com/gofiber/fiber/v2"

	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// subscriptionResponse is a subscription as answers show it: never with its secret.
type subscriptionResponse struct {
	ID        string          `json:"id"`
	URL       string          `json:"url"`
	Types     []string        `json:"types"`
	CreatedAt string          `json:"createdAt"`
	Breaker   breakerResponse `json:"breaker"`
}

// breakerResponse is a subscription's circuit breaker.
type breakerResponse struct {
	State       string   `json:"state"`
	Failures    int      `json:"failures"`
	PausedUntil jsonTime `json:"pausedUntil"`
}

func newSubscriptionResponse(v query.SubscriptionView) subscriptionResponse {
	types := make([]string, len(v.Types))
	for i, t := range v.Types {
		types[i] = string(t)
	}
	return subscriptionResponse{ID: v.ID, URL: v.URL, Types: types, CreatedAt: formatTime(v.CreatedAt),
		Breaker: breakerResponse{State: string(v.Breaker.State), Failures: v.Breaker.Failures, PausedUntil: jsonTime(v.Breaker.PausedUntil)}}
}

// createdSubscription is the answer to POST /subscriptions: the one answer with the secret.
type createdSubscription struct {
	subscriptionResponse
	Secret string `json:"secret"`
}

type subscriptionList struct {
	Data []subscriptionResponse `json:"data"`
}

// deliveryResponse is one delivery of a subscription's log.
type deliveryResponse struct {
	ID            string   `json:"id"`
	EventID       string   `json:"eventId"`
	EventType     string   `json:"eventType"`
	State         string   `json:"state"`
	Attempts      int      `json:"attempts"`
	CreatedAt     string   `json:"createdAt"`
	NextAttemptAt jsonTime `json:"nextAttemptAt"` // null unless PENDING
	LastAttemptAt jsonTime `json:"lastAttemptAt"`
	LastStatus    *int     `json:"lastStatus"`
	LastError     *string  `json:"lastError"`
	DeliveredAt   jsonTime `json:"deliveredAt"`
}

func newDeliveryResponse(d ports.Delivery) deliveryResponse {
	r := deliveryResponse{ID: d.ID, EventID: d.EventID, EventType: string(d.EventType), State: string(d.State),
		Attempts: d.Attempts, CreatedAt: formatTime(d.CreatedAt), LastAttemptAt: jsonTime(d.LastAttemptAt),
		DeliveredAt: jsonTime(d.DeliveredAt)}
	if d.State == ports.DeliveryPending {
		r.NextAttemptAt = jsonTime(d.NextAttemptAt)
	}
	if d.LastStatus != 0 {
		r.LastStatus = &d.LastStatus
	}
	if d.LastError != "" {
		r.LastError = &d.LastError
	}
	return r
}

type deliveryPage struct {
	Data       []deliveryResponse `json:"data"`
	Pagination pagination         `json:"pagination"`
}

// subscriptionRequest is the body of POST /subscriptions, its fields of the right JSON
// types. Secret is nil when absent or null.
type subscriptionRequest struct {
	URL    string   `json:"url"`
	Types  []string `json:"types"`
	Secret *string  `json:"secret"`
}

// ruleCheck adapts a check of the application's to ozzo.
func ruleCheck(check func(string) error) validation.Rule {
	return validation.By(func(v any) error {
		s, _ := v.(string)
		if s == "" {
			return nil // Required's business
		}
		return check(s)
	})
}

// ruleTypes checks each type listed, and that none is listed twice; the errors are keyed by
// index.
var ruleTypes = validation.By(func(v any) error {
	types, _ := v.([]string)
	errs := validation.Errors{}
	seen := make(map[string]bool, len(types))
	for i, t := range types {
		key := fmt.Sprint(i)
		if err := command.CheckEventType(event.Type(t)); err != nil {
			errs[key] = err
		} else if seen[t] {
			errs[key] = command.ErrTypeRepeated
		}
		seen[t] = true
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
})

var ruleSecret = validation.By(func(v any) error {
	if s, ok := v.(*string); ok && s != nil {
		return command.CheckSecret(*s)
	}
	return nil
})

// Validate checks the request against the contract's rules: url an absolute http or https
// URL of at most 2048 characters; types a non-empty list of transition types, none twice;
// secret, when given, 16 to 256 printable ASCII characters.
func (r subscriptionRequest) Validate() error {
	return validation.ValidateStruct(&r,
		validation.Field(&r.URL, validation.Required.Error("is required: where to POST the events"),
			ruleCheck(command.CheckSubscriptionURL)),
		validation.Field(&r.Types, validation.Required.Error(command.ErrNoTypes.Error()), ruleTypes),
		validation.Field(&r.Secret, ruleSecret),
	)
}

// indexedField is how ozzo names an item of a list ("types.1"); the API writes "types[1]".
var indexedField = regexp.MustCompile(`\.([0-9]+)$`)

// decodeSubscription reads the body of POST /subscriptions, naming each field of the wrong
// JSON type, then each that breaks a rule.
func decodeSubscription(body []byte) (command.CreateSubscription, error) {
	var raw struct {
		URL    json.RawMessage `json:"url"`
		Types  json.RawMessage `json:"types"`
		Secret json.RawMessage `json:"secret"`
	}
	if err := decodeFields(body, &raw, "url", "types", "secret"); err != nil {
		return command.CreateSubscription{}, err
	}
	var (
		r        subscriptionRequest
		typeErrs []detail
	)
	if s, ok := decodeString(raw.URL); ok && utf8.ValidString(s) {
		r.URL = s
	} else {
		typeErrs = append(typeErrs, detail{Field: "url", Message: "must be a string"})
	}
	var items []json.RawMessage
	if !isNull(raw.Types) {
		if raw.Types[0] != '[' || json.Unmarshal(raw.Types, &items) != nil {
			typeErrs = append(typeErrs, detail{Field: "types", Message: "must be an array of strings"})
		}
	}
	for i, item := range items {
		s, ok := decodeString(item)
		if !ok || isNull(item) {
			typeErrs = append(typeErrs, detail{Field: fmt.Sprintf("types[%d]", i), Message: "must be a string"})
		}
		r.Types = append(r.Types, s)
	}
	if !isNull(raw.Secret) {
		if s, ok := decodeString(raw.Secret); ok {
			r.Secret = &s
		} else {
			typeErrs = append(typeErrs, detail{Field: "secret", Message: "must be a string"})
		}
	}
	if len(typeErrs) > 0 {
		return command.CreateSubscription{}, malformedJSON(fieldCount(len(typeErrs))+" of the wrong JSON type", typeErrs...)
	}
	violations, err := appendViolations(nil, "", r.Validate())
	if err != nil {
		return command.CreateSubscription{}, fmt.Errorf("validate subscription: %w", err)
	}
	if len(violations) > 0 {
		for i := range violations {
			violations[i].Field = indexedField.ReplaceAllString(violations[i].Field, "[$1]")
		}
		return command.CreateSubscription{}, &ports.ValidationError{Violations: violations}
	}
	cmd := command.CreateSubscription{URL: r.URL, Types: make([]event.Type, len(r.Types))}
	for i, t := range r.Types {
		cmd.Types[i] = event.Type(t)
	}
	if r.Secret != nil {
		cmd.Secret = *r.Secret
	}
	return cmd, nil
}

// maxResourceIDLen bounds the id of a subscription or a delivery in a path.
const maxResourceIDLen = 64

// resourceIDParam is the path parameter name: ids are the service's own, printable ASCII.
func resourceIDParam(c *fiber.Ctx, name, what string) (string, error) {
	id := c.Params(name)
	ok := id != "" && len(id) <= maxResourceIDLen
	for i := 0; ok && i < len(id); i++ {
		ok = id[i] > ' ' && id[i] < 0x7f
	}
	if !ok {
		return "", &ports.ValidationError{Violations: []ports.Violation{{Field: name, Message: "is not " + what}}}
	}
	return strings.Clone(id), nil
}

// createSubscription is POST /subscriptions: 201 with the subscription and its secret.
func (h *handlers) createSubscription(c *fiber.Ctx) error {
	cmd, err := decodeSubscription(c.Request().Body())
	if err != nil {
		return err
	}
	s, err := h.app.Commands.CreateSubscription.Handle(c.UserContext(), cmd)
	if err != nil {
		return err
	}
	c.Location("/subscriptions/" + url.PathEscape(s.ID))
	out := createdSubscription{subscriptionResponse: newSubscriptionResponse(query.ViewOf(s, h.clock.Now())), Secret: s.Secret}
	return c.Status(fiber.StatusCreated).JSON(out, mimeJSON)
}

// listSubscriptions is GET /subscriptions: every subscription, oldest first.
func (h *handlers) listSubscriptions(c *fiber.Ctx) error {
	list, err := h.app.Queries.Subscriptions.List(c.UserContext())
	if err != nil {
		return err
	}
	out := subscriptionList{Data: make([]subscriptionResponse, len(list))}
	for i, v := range list {
		out.Data[i] = newSubscriptionResponse(v)
	}
	return c.JSON(out, mimeJSON)
}

// getSubscription is GET /subscriptions/:id.
func (h *handlers) getSubscription(c *fiber.Ctx) error {
	id, err := resourceIDParam(c, "id", "a subscription id")
	if err != nil {
		return err
	}
	v, err := h.app.Queries.Subscriptions.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(newSubscriptionResponse(v), mimeJSON)
}

// deleteSubscription is DELETE /subscriptions/:id: 204, and nothing more is sent to it.
func (h *handlers) deleteSubscription(c *fiber.Ctx) error {
	id, err := resourceIDParam(c, "id", "a subscription id")
	if err != nil {
		return err
	}
	if err := h.app.Commands.DeleteSubscription.Handle(c.UserContext(), command.DeleteSubscription{ID: id}); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// deliveryStates reads a comma-separated list of delivery states (none when absent).
func (q *queryParams) deliveryStates() []ports.DeliveryState {
	return list(q, "state", parseDeliveryState, "must be a comma-separated list of PENDING, DELIVERED, DEAD")
}

func parseDeliveryState(s string) (ports.DeliveryState, error) {
	switch st := ports.DeliveryState(s); st {
	case ports.DeliveryPending, ports.DeliveryDelivered, ports.DeliveryDead:
		return st, nil
	}
	return "", fmt.Errorf("unknown delivery state %q", s)
}

// subscriptionDeliveries is GET /subscriptions/:id/deliveries: the subscription's log,
// newest first, filtered by state and paged as GET /alarms is.
func (h *handlers) subscriptionDeliveries(c *fiber.Ctx) error {
	id, err := resourceIDParam(c, "id", "a subscription id")
	if err != nil {
		return err
	}
	q := parseQuery(c, "state", "page", "pageSize")
	states := q.deliveryStates()
	page := q.int("page", 1, 1, maxPage)
	pageSize := q.int("pageSize", defaultPageSize, 1, maxPageSize)
	if err := q.err(); err != nil {
		return err
	}
	res, err := h.app.Queries.Subscriptions.Deliveries(c.UserContext(),
		query.DeliveryList{SubscriptionID: id, States: states, Page: page, PageSize: pageSize})
	if err != nil {
		return err
	}
	out := deliveryPage{
		Data:       make([]deliveryResponse, len(res.Deliveries)),
		Pagination: pagination{Page: res.Page, PageSize: res.PageSize, Total: res.Total, TotalPages: res.TotalPages},
	}
	for i, d := range res.Deliveries {
		out.Data[i] = newDeliveryResponse(d)
	}
	return c.JSON(out, mimeJSON)
}

// redeliver is POST /subscriptions/:id/deliveries/:deliveryId/redeliver: a DEAD delivery is
// PENDING again, due now, with a new run of attempts; any other state is 409 conflict.
func (h *handlers) redeliver(c *fiber.Ctx) error {
	id, err := resourceIDParam(c, "id", "a subscription id")
	if err != nil {
		return err
	}
	deliveryID, err := resourceIDParam(c, "deliveryId", "a delivery id")
	if err != nil {
		return err
	}
	d, err := h.app.Commands.Redeliver.Handle(c.UserContext(), command.Redeliver{SubscriptionID: id, DeliveryID: deliveryID})
	if errors.Is(err, ports.ErrConflict) {
		return &apiError{status: fiber.StatusConflict, code: codeConflict,
			message: "only a DEAD delivery can be redelivered; this one is still PENDING or was DELIVERED"}
	}
	if err != nil {
		return err
	}
	return c.JSON(newDeliveryResponse(d), mimeJSON)
}
