// Command processor is the Lambda function that runs the order saga for each
// message of the processing queue. Payment and inventory are the simulators
// unless LEDGER_SERVICES_URL names a service speaking their HTTP API.
package main

import (
	"context"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/orderledger/orderledger/aws/lambdas"
)

func main() {
	d, err := lambdas.Load(context.Background(), os.Getenv)
	if err != nil {
		log.Fatal(err) // cold start only: the function cannot run without its wiring
	}
	p, err := d.Processor()
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(lambdas.Processor(p, d.Logger))
}
