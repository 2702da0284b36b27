// Command projector is the Lambda function that keeps the read table up to
// date from the events table's DynamoDB stream.
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
	p, err := d.Projector()
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(lambdas.Projector(p, d.Logger))
}
