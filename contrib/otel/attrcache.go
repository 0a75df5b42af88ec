package warrenotel

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// attrCache keeps the measurement attribute sets already built, one per
// label combination (publisher and outcome; consumer, queue and outcome):
// building a set sorts and allocates, and the combinations are few.
type attrCache struct {
	m sync.Map // attrKey -> metric.MeasurementOption
}

type attrKey struct{ a, b, c string }

// get returns the option for k, building it with build the first time.
func (c *attrCache) get(k attrKey, build func() []attribute.KeyValue) metric.MeasurementOption {
	if v, ok := c.m.Load(k); ok {
		return v.(metric.MeasurementOption)
	}
	opt := metric.WithAttributeSet(attribute.NewSet(build()...))
	v, _ := c.m.LoadOrStore(k, opt)
	return v.(metric.MeasurementOption)
}
