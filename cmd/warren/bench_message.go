package main

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"

	amqp "github.com/rabbitmq/amqp091-go"
)

// benchMinBody is the smallest body that carries a message number.
const benchMinBody = 8

// benchMessage returns message number id: a persistent message of size
// bytes (at least benchMinBody) whose body starts with id, big-endian, so the
// verifier can count every copy, and whose MessageId is the same number, so
// warren republishes it under the id a consumer would deduplicate by.
func benchMessage(id, size int) amqp.Publishing {
	body := make([]byte, max(size, benchMinBody))
	binary.BigEndian.PutUint64(body, uint64(id))
	for i := benchMinBody; i < len(body); i++ {
		body[i] = 'w'
	}
	return amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		ContentType:  "application/octet-stream",
		MessageId:    strconv.Itoa(id),
		Body:         body,
	}
}

// errBenchShortBody reports a body too short to carry a message number.
var errBenchShortBody = errors.New("bench: message body shorter than 8 bytes")

// benchMessageID returns the number benchMessage wrote into body.
func benchMessageID(body []byte) (int, error) {
	if len(body) < benchMinBody {
		return 0, errBenchShortBody
	}
	return int(binary.BigEndian.Uint64(body)), nil
}

// benchBitset is a fixed-size set of message numbers.
type benchBitset []byte

func newBenchBitset(n int) benchBitset { return make(benchBitset, (n+7)/8) }

func (b benchBitset) set(i int)      { b[i/8] |= 1 << (i % 8) }
func (b benchBitset) has(i int) bool { return i >= 0 && i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }

func (b benchBitset) count() int {
	n := 0
	for _, x := range b {
		for ; x != 0; x &= x - 1 {
			n++
		}
	}
	return n
}

func (b benchBitset) encode() string { return base64.StdEncoding.EncodeToString(b) }

func decodeBenchBitset(s string, n int) (benchBitset, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) != (n+7)/8 {
		return nil, errors.New("bench: bitmap of " + strconv.Itoa(len(b)) + " bytes for " + strconv.Itoa(n) + " messages")
	}
	return benchBitset(b), nil
}
