package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/iotledger/iotledger/chaincode/reading"
)

// Scenario generates one industry's readings: realistic values with
// occasional excursions that automation rules can catch.
type Scenario struct {
	Name        string
	DeviceType  string // enrolled device type
	Description string
	// Excursion says what an out-of-range reading looks like, for rule authors.
	Excursion string
	next      func(st *deviceState) []reading.Value
}

// deviceState is one simulated device's evolving physical state.
type deviceState struct {
	rng   *rand.Rand
	step  int
	level float64 // slowly varying quantity (soil moisture, battery...)
	burst int     // remaining readings of the current excursion
}

// excursion starts (with probability p) or continues an excursion of a few readings.
func (s *deviceState) excursion(p float64) bool {
	if s.burst > 0 {
		s.burst--
		return true
	}
	if s.rng.Float64() < p {
		s.burst = 1 + s.rng.IntN(3)
		return true
	}
	return false
}

func (s *deviceState) around(mean, sd float64) float64 {
	return round(mean+s.rng.NormFloat64()*sd, 2)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func num(name, unit string, v float64) reading.Value {
	return reading.Value{Name: name, Unit: unit, Number: &v}
}

func flag(name string, b bool) reading.Value { return reading.Value{Name: name, Bool: &b} }

func text(name, s string) reading.Value { return reading.Value{Name: name, String: &s} }

// scenarios are the built-in scenarios by name.
var scenarios = map[string]Scenario{
	"cold-chain": {
		Name: "cold-chain", DeviceType: "reefer-sensor",
		Description: "refrigerated shipment (supply chain): temperature 2-8 °C, humidity, door",
		Excursion:   "temperature above 8 °C (values 9-14) with the door open",
		next: func(s *deviceState) []reading.Value {
			temp, door := s.around(4.5, 0.6), false
			if s.excursion(0.02) {
				temp, door = round(9+s.rng.Float64()*5, 2), true
			}
			return []reading.Value{num("temperature", "Cel", temp), num("humidity", "%RH", s.around(82, 3)), flag("door_open", door)}
		},
	},
	"patient-vitals": {
		Name: "patient-vitals", DeviceType: "vitals-monitor",
		Description: "patient monitor (healthcare): heart rate, SpO2, body temperature",
		Excursion:   "heart_rate above 120 beat/min or spo2 below 90 %",
		next: func(s *deviceState) []reading.Value {
			hr, spo2 := s.around(72, 6), math.Min(100, s.around(97.5, 0.8))
			if s.excursion(0.015) {
				hr, spo2 = round(125+s.rng.Float64()*25, 0), round(85+s.rng.Float64()*4, 1)
			}
			return []reading.Value{num("heart_rate", "beat/min", hr), num("spo2", "%", spo2), num("body_temp", "Cel", s.around(36.8, 0.2))}
		},
	},
	"soil-moisture": {
		Name: "soil-moisture", DeviceType: "soil-probe",
		Description: "field probe (agriculture): volumetric soil moisture drying out between irrigations, soil temperature, battery",
		Excursion:   "soil_moisture below 12 % (irrigate)",
		next: func(s *deviceState) []reading.Value {
			if s.level == 0 {
				s.level = 30 + s.rng.Float64()*8
			}
			s.level -= 0.05 + s.rng.Float64()*0.1
			if s.level < 18 && s.rng.Float64() < 0.05 { // irrigation
				s.level = 35 + s.rng.Float64()*5
			}
			m := s.level
			if s.excursion(0.01) {
				m = 8 + s.rng.Float64()*3
			}
			return []reading.Value{num("soil_moisture", "%", round(m, 2)), num("soil_temp", "Cel", s.around(17, 1.5)),
				num("battery", "V", round(3.7-float64(s.step)*0.0001, 3))}
		},
	},
	"machine-vibration": {
		Name: "machine-vibration", DeviceType: "vibration-sensor",
		Description: "rotating machine (manufacturing): RMS vibration, bearing temperature, speed",
		Excursion:   "vibration_rms above 7 m/s2 (bearing wear) with bearing_temp above 80 °C",
		next: func(s *deviceState) []reading.Value {
			vib, bt := math.Abs(s.around(2.2, 0.4)), s.around(55, 3)
			state := "running"
			if s.excursion(0.02) {
				vib, bt, state = round(7.5+s.rng.Float64()*4, 2), round(82+s.rng.Float64()*10, 1), "alarm"
			}
			return []reading.Value{num("vibration_rms", "m/s2", vib), num("bearing_temp", "Cel", bt),
				num("speed", "r/min", s.around(1480, 5)), text("state", state)}
		},
	},
	"air-quality": {
		Name: "air-quality", DeviceType: "air-station",
		Description: "street air station (smart city): PM2.5, NO2, CO2",
		Excursion:   "pm25 above 55 ug/m3 (values 60-180)",
		next: func(s *deviceState) []reading.Value {
			pm := math.Abs(s.around(14, 5))
			if s.excursion(0.02) {
				pm = round(60+s.rng.Float64()*120, 1)
			}
			return []reading.Value{num("pm25", "ug/m3", pm), num("no2", "ppb", math.Abs(s.around(21, 6))), num("co2", "ppm", s.around(420, 15))}
		},
	},
}

// Scenarios lists the built-in scenarios, sorted by name.
func Scenarios() []Scenario {
	out := make([]Scenario, 0, len(scenarios))
	for _, s := range scenarios {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupScenario finds a scenario by name.
func LookupScenario(name string) (Scenario, error) {
	s, ok := scenarios[name]
	if !ok {
		names := make([]string, 0, len(scenarios))
		for _, sc := range Scenarios() {
			names = append(names, sc.Name)
		}
		return Scenario{}, fmt.Errorf("unknown scenario %q: choose one of %v", name, names)
	}
	return s, nil
}

// Generator produces one device's readings deterministically from a seed.
type Generator struct {
	sc Scenario
	st deviceState
}

// NewGenerator makes the value generator of device number index.
func (s Scenario) NewGenerator(seed uint64, index int) *Generator {
	// Reproducible values from a seed are the point here, not secrecy.
	return &Generator{sc: s, st: deviceState{rng: rand.New(rand.NewPCG(seed, uint64(index)))}} //nolint:gosec // deterministic simulation values
}

// Next returns the next reading's values.
func (g *Generator) Next() []reading.Value {
	v := g.sc.next(&g.st)
	g.st.step++
	return v
}

// Jitter returns a factor in [0.8, 1.2) to spread devices' send times.
func (g *Generator) Jitter() float64 { return 0.8 + g.st.rng.Float64()*0.4 }
