// Command publisher is the Lambda function that publishes stored events from
// the events table's DynamoDB stream to the SNS topics.
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
	lambda.Start(lambdas.LazyPublisher(d))
}
