// Command processor is the Lambda function that runs the order saga for each
// message of the processing queue. Payment and inventory are the simulators
// unless LEDGER_SERVICES_URL names a service speaking their HTTP API.
package main

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/orderledger/orderledger/aws/lambdas"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/services/servicehttp"
	"github.com/orderledger/orderledger/services/sim"
)

func main() {
	d, err := lambdas.FromEnv(context.Background())
	if err != nil {
		log.Fatal(err) // cold start only: the function cannot run without its wiring
	}
	cfg := processing.Config{Store: d.Store, Codec: d.Codec, Logger: d.Logger}
	if u := os.Getenv("LEDGER_SERVICES_URL"); u != "" {
		c, err := servicehttp.NewClient(u, 5*time.Second)
		if err != nil {
			log.Fatal(err)
		}
		cfg.Payment, cfg.Inventory = c, c
	} else {
		s, err := sim.New(sim.Config{})
		if err != nil {
			log.Fatal(err)
		}
		cfg.Payment, cfg.Inventory = s, s
	}
	p, err := processing.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(lambdas.Processor(p, d.Logger))
}
