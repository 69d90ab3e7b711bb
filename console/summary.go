package console

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/iotledger/iotledger/console/identity"
	"github.com/iotledger/iotledger/index"
)

// Summary is a device's numeric readings over a time range, in equal time
// buckets: what a chart of a long range draws, instead of every reading.
type Summary struct {
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	BucketMillis int64     `json:"bucketMillis"`
	Count        int       `json:"count"`               // readings summarised
	Truncated    bool      `json:"truncated,omitempty"` // the range holds more readings than the console summarises
	// Times are the start of each bucket that holds readings (Unix ms);
	// every series has one entry per time, null where it had no value.
	Times  []int64         `json:"times"`
	Series []SeriesSummary `json:"series"`
}

// SeriesSummary is one named value's minimum, maximum and mean per bucket.
type SeriesSummary struct {
	Name string     `json:"name"`
	Unit string     `json:"unit,omitempty"`
	Min  []*float64 `json:"min"`
	Max  []*float64 `json:"max"`
	Mean []*float64 `json:"mean"`
}

type acc struct {
	n             int
	min, max, sum float64
}

func (a *acc) add(v float64) {
	if a.n == 0 || v < a.min {
		a.min = v
	}
	if a.n == 0 || v > a.max {
		a.max = v
	}
	a.n++
	a.sum += v
}

// summaryPage is how many readings one index query of a summary reads.
const summaryPage = 1000

func (s *Server) readingSummary(w http.ResponseWriter, r *http.Request, _ identity.Caller) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	q, err := readingQuery(r)
	if err != nil {
		return err
	}
	if q.Newest || q.AfterSeq > 0 || r.URL.Query().Has("limit") {
		return badRequest("a summary takes from, to and buckets only")
	}
	if q.To.IsZero() {
		q.To = time.Now().UTC()
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-24 * time.Hour)
	}
	buckets := 500
	if v := r.URL.Query().Get("buckets"); v != "" {
		if buckets, err = strconv.Atoi(v); err != nil || buckets < 1 || buckets > 2000 {
			return badRequest("buckets %q: want 1 to 2000", v)
		}
	}
	span := q.To.UnixMilli() - q.From.UnixMilli() + 1
	width := max((span+int64(buckets)-1)/int64(buckets), 1)
	out := Summary{From: q.From, To: q.To, BucketMillis: width, Times: []int64{}, Series: []SeriesSummary{}}

	type seriesAcc struct {
		unit string
		at   map[int64]*acc
	}
	series := map[string]*seriesAcc{}
	var names []string
	used := map[int64]bool{}
	q.Limit = summaryPage
	for {
		rs, err := st.Readings(r.Context(), q)
		if err != nil {
			return err
		}
		for _, rd := range rs {
			if out.Count == s.limits.SummaryReadings {
				out.Truncated = true
				break
			}
			out.Count++
			v, err := index.View(rd)
			if err != nil {
				return err
			}
			b := (rd.Timestamp - q.From.UnixMilli()) / width
			for _, val := range v.Values {
				if val.Number == nil {
					continue
				}
				sa := series[val.Name]
				if sa == nil {
					sa = &seriesAcc{unit: val.Unit, at: map[int64]*acc{}}
					series[val.Name] = sa
					names = append(names, val.Name)
				}
				a := sa.at[b]
				if a == nil {
					a = &acc{}
					sa.at[b] = a
				}
				a.add(*val.Number)
				used[b] = true
			}
		}
		if out.Truncated || len(rs) < summaryPage {
			break
		}
		q.AfterSeq = rs[len(rs)-1].Seq
	}
	idx := make([]int64, 0, len(used))
	for b := range used {
		idx = append(idx, b)
	}
	slices.Sort(idx)
	for _, b := range idx {
		out.Times = append(out.Times, q.From.UnixMilli()+b*width)
	}
	slices.Sort(names)
	for _, name := range names {
		sa := series[name]
		ss := SeriesSummary{Name: name, Unit: sa.unit, Min: make([]*float64, len(idx)), Max: make([]*float64, len(idx)), Mean: make([]*float64, len(idx))}
		for i, b := range idx {
			if a := sa.at[b]; a != nil {
				lo, hi, mean := a.min, a.max, a.sum/float64(a.n)
				ss.Min[i], ss.Max[i], ss.Mean[i] = &lo, &hi, &mean
			}
		}
		out.Series = append(out.Series, ss)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
