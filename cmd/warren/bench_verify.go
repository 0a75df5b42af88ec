package main

import (
	"context"
	"fmt"
	"time"
)

// benchReadBackTimeout bounds reading a queue back after the loss scenario.
const benchReadBackTimeout = time.Minute

// readBack drains queue on the admin connection and counts the copies of
// each message number below n; foreign counts bodies that carry no such
// number.
func (bn *bench) readBack(ctx context.Context, queue string, n int) (copies []int, foreign int, err error) {
	ctx, cancel := context.WithTimeout(ctx, benchReadBackTimeout)
	defer cancel()
	ch, err := bn.conn.Channel()
	if err != nil {
		return nil, 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return nil, 0, err
	}
	deliveries, err := ch.ConsumeWithContext(ctx, queue, "", true, false, false, false, nil)
	if err != nil {
		return nil, 0, err
	}
	copies = make([]int, n)
	for i := 0; i < q.Messages; i++ {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return nil, 0, fmt.Errorf("consumer ended after %d of %d messages", i, q.Messages)
			}
			id, err := benchMessageID(d.Body)
			if err != nil || id < 0 || id >= n {
				foreign++
				continue
			}
			copies[id]++
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("read %d of %d messages: %w", i, q.Messages, ctx.Err())
		}
	}
	return copies, foreign, nil
}

// benchLossTally is what the loss scenario found in the queue.
type benchLossTally struct {
	lost          int // message numbers with no copy in the queue
	lostConfirmed int // of those, the ones the publisher saw confirmed
	duplicates    int // copies beyond the first
}

// benchTally counts what the loss scenario lost and duplicated, given the
// copies of each message found in the queue and the confirmed set.
func benchTally(copies []int, confirmed benchBitset) benchLossTally {
	var t benchLossTally
	for id, n := range copies {
		switch {
		case n == 0:
			t.lost++
			if confirmed.has(id) {
				t.lostConfirmed++
			}
		case n > 1:
			t.duplicates += n - 1
		}
	}
	return t
}
