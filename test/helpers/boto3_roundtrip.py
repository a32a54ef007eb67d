"""A boto3 client's round trip through an SQS endpoint, reported as JSON on stdout for a test to check.

Usage: python3 boto3_roundtrip.py ENDPOINT QUEUE_NAME
Credentials and region come from the environment; the protocol from the botocore model in use (see
sqs_query_model.py for the Query one). The script asserts nothing: it reports what the client saw.
"""

import base64
import hashlib
import json
import sys

import boto3

BODY = '<order id="7">&amp; \'fish\' & chips</order>\r\nline two\t\u20ac \U0001F600'
BINARY = bytes([0, 1, 2, 254, 255])


def main(endpoint, queue_name):
    sqs = boto3.client('sqs', endpoint_url=endpoint)
    content_types = set()

    def remember_content_type(request, **_):
        value = request.headers.get('Content-Type')
        content_types.add(value.decode() if isinstance(value, bytes) else str(value))

    sqs.meta.events.register('before-send.sqs.*', remember_content_type)
    report = {'protocol': sqs.meta.service_model.protocol}

    url = sqs.create_queue(QueueName=queue_name, Attributes={'VisibilityTimeout': '40'}, tags={'team': 'edge'})['QueueUrl']
    report['queueUrl'] = url
    report['foundUrl'] = sqs.get_queue_url(QueueName=queue_name)['QueueUrl']
    report['listed'] = sqs.list_queues(QueueNamePrefix=queue_name).get('QueueUrls', [])
    report['attributes'] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['VisibilityTimeout', 'QueueArn'])['Attributes']
    sqs.tag_queue(QueueUrl=url, Tags={'env': 'test'})
    report['tags'] = sqs.list_queue_tags(QueueUrl=url)['Tags']

    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody=BODY,
        MessageAttributes={
            'kind': {'DataType': 'String', 'StringValue': 'a < b & c'},
            'count': {'DataType': 'Number', 'StringValue': '42'},
            'blob': {'DataType': 'Binary', 'BinaryValue': BINARY},
        },
        MessageSystemAttributes={'AWSTraceHeader': {'DataType': 'String', 'StringValue': 'Root=1-5759e988-bd862e3fe1be46a994272793'}},
    )
    report['sent'] = {key: sent.get(key) for key in ('MessageId', 'MD5OfMessageBody', 'MD5OfMessageAttributes', 'MD5OfMessageSystemAttributes')}
    report['bodyMd5'] = hashlib.md5(BODY.encode('utf-8')).hexdigest()

    received = sqs.receive_message(QueueUrl=url, MessageAttributeNames=['All'], MessageSystemAttributeNames=['All'], WaitTimeSeconds=1)
    messages = received.get('Messages', [])
    report['received'] = [
        {
            'MessageId': m['MessageId'],
            'bodyIntact': m['Body'] == BODY,
            'MD5OfBody': m['MD5OfBody'],
            'MD5OfMessageAttributes': m.get('MD5OfMessageAttributes'),
            'attributes': m.get('Attributes', {}),
            'messageAttributes': {
                name: {
                    'DataType': value['DataType'],
                    **({'StringValue': value['StringValue']} if 'StringValue' in value else {}),
                    **({'BinaryValue': base64.b64encode(value['BinaryValue']).decode()} if 'BinaryValue' in value else {}),
                }
                for name, value in m.get('MessageAttributes', {}).items()
            },
        }
        for m in messages
    ]
    report['binaryBase64'] = base64.b64encode(BINARY).decode()
    for m in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m['ReceiptHandle'])

    batch = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {'Id': 'good', 'MessageBody': 'alpha'},
            {'Id': 'bad', 'MessageBody': 'beta', 'MessageAttributes': {'aws.reserved': {'DataType': 'String', 'StringValue': 'x'}}},
        ],
    )
    report['batch'] = {
        'successful': [entry['Id'] for entry in batch.get('Successful', [])],
        'failed': [{'Id': entry['Id'], 'SenderFault': entry['SenderFault']} for entry in batch.get('Failed', [])],
    }
    handles = [m['ReceiptHandle'] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get('Messages', [])]
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[{'Id': 'e%d' % i, 'ReceiptHandle': h} for i, h in enumerate(handles)])
    report['batchDeleted'] = [entry['Id'] for entry in deleted.get('Successful', [])]
    report['countAfter'] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['ApproximateNumberOfMessages'])['Attributes']

    try:
        sqs.get_queue_url(QueueName=queue_name + '-absent')
        report['missingQueue'] = None
    except sqs.exceptions.QueueDoesNotExist as error:
        report['missingQueue'] = {'class': type(error).__name__, 'code': error.response['Error']['Code'], 'status': error.response['ResponseMetadata']['HTTPStatusCode']}

    sqs.delete_queue(QueueUrl=url)
    report['contentTypes'] = sorted(content_types)
    print(json.dumps(report))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
