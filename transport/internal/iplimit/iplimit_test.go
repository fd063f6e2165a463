package iplimit

import "testing"

func TestLimiter(t *testing.T) {
	l := New(2)
	r1, ok1 := l.Acquire("127.0.0.1:1")
	_, ok2 := l.Acquire("[::ffff:127.0.0.1]:2")
	_, ok3 := l.Acquire("127.0.0.1:3")
	_, other := l.Acquire("127.0.0.2:3")
	if !ok1 || !ok2 || ok3 || !other {
		t.Fatalf("got %v %v %v %v, want true true false true", ok1, ok2, ok3, other)
	}
	r1()
	r1() // a second release changes nothing
	if _, ok := l.Acquire("127.0.0.1:4"); !ok {
		t.Fatal("a released slot was not reusable")
	}
	if _, ok := l.Acquire("127.0.0.1:5"); ok {
		t.Fatal("a double release freed two slots")
	}
	if _, ok := New(-1).Acquire("127.0.0.1:1"); !ok {
		t.Fatal("a negative max limited")
	}
	if New(0).max != DefaultMax {
		t.Fatal("zero is not the default")
	}
	if _, ok := l.Acquire("@unix"); !ok {
		t.Fatal("an address without an IP was limited")
	}
}
