// A Node SQS worker on the sqs-consumer package, as a team might write one. It knows
// nothing of sqslab: the AWS SDK finds its endpoint (AWS_ENDPOINT_URL_SQS), region and
// credentials in the environment, and the queue comes from QUEUE_URL or SQSLAB_QUEUE_URL.
// Run it in a scenario with `consumer.program` (scenarios/own_consumer_node.yaml).
import { SQSClient } from "@aws-sdk/client-sqs";
import { Consumer } from "sqs-consumer";

const queueUrl = process.env.QUEUE_URL || process.env.SQSLAB_QUEUE_URL;
const workMs = Number(process.env.WORK_MS || "50");
let handled = 0;

const consumer = Consumer.create({
  queueUrl,
  sqs: new SQSClient({}),
  batchSize: 5,
  waitTimeSeconds: 2,
  // The business logic: parse the order and pretend to charge it. Returning the message
  // tells sqs-consumer to delete it; throwing leaves it for SQS to deliver again.
  handleMessage: async (message) => {
    let order;
    try {
      order = JSON.parse(message.Body);
    } catch {
      order = { raw: message.Body.slice(0, 40) };
    }
    // Real work varies: 75-125 % of WORK_MS.
    await new Promise((resolve) => setTimeout(resolve, workMs * (0.75 + 0.5 * Math.random())));
    handled += 1;
    return message;
  },
});

consumer.on("error", (err) => console.error(`worker error: ${err.message}`));
consumer.on("processing_error", (err) => console.error(`worker processing error: ${err.message}`));
consumer.on("started", () => console.log(`worker ready, polling ${queueUrl}`));
consumer.on("stopped", () => {
  console.log(`worker stopped after ${handled} messages`);
  process.exit(0);
});

process.on("SIGTERM", () => {
  console.log("SIGTERM: stopping after the messages in hand");
  consumer.stop({ abort: false });
});

consumer.start();
