package events

import (
	"errors"
	"testing"
)

func TestBusFiltersAndDropsSlowSubscribers(t *testing.T) {
	b := New(2, 2)
	all, err := b.Subscribe(nil)
	if err != nil {
		t.Fatal(err)
	}
	cam1, err := b.Subscribe(func(ev Event) bool { return ev.Camera == "cam-1" })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(nil); !errors.Is(err, ErrTooMany) {
		t.Fatalf("third subscriber: %v, want ErrTooMany", err)
	}
	b.Publish(Event{Type: TypeCameraState, Camera: "cam-2"})
	b.Publish(Event{Type: TypeCameraState, Camera: "cam-1"})
	if ev := <-cam1.C(); ev.Camera != "cam-1" || ev.ID != 2 || ev.At.IsZero() {
		t.Errorf("cam-1 subscriber got %+v, want cam-1's event, the second published", ev)
	}
	// all holds 2 events and reads none: the third drops it, and frees its place.
	b.Publish(Event{Type: TypeAlert})
	n := 0
	for range all.C() {
		n++
	}
	if n != 2 {
		t.Errorf("the slow subscriber got %d events before its stream closed, want its buffer's 2", n)
	}
	if b.Dropped() != 1 || b.Subscribers() != 1 {
		t.Errorf("dropped %d, subscribers %d; want 1 and 1", b.Dropped(), b.Subscribers())
	}
	if _, err := b.Subscribe(nil); err != nil {
		t.Errorf("subscribe after a drop: %v", err)
	}
	cam1.Close()
	cam1.Close()
	var nilBus *Bus
	nilBus.Publish(Event{}) // a service without a bus publishes into nothing
}
