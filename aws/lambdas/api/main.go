// Command api is the Lambda function behind the API Gateway HTTP API: the
// same REST API `ledger serve` runs, on the DynamoDB stores.
package main

import (
	"context"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/aws/lambdas"
)

func main() {
	d, err := lambdas.Load(context.Background(), os.Getenv)
	if err != nil {
		log.Fatal(err) // cold start only: the function cannot run without its wiring
	}
	lambda.Start(lambdas.API(api.NewRouter(api.Deps{
		Store: d.Events, Views: d.Views, Codec: d.Codec, Logger: d.Logger, Token: d.Config.APIToken,
	})))
}
