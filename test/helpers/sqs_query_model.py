"""Writes a botocore data directory whose SQS model speaks the AWS Query protocol.

botocore >= 1.31 ships SQS in the AWS JSON protocol only. Older SDKs and the AWS CLI v1 of the time
spoke the Query protocol, with the same operations but form-encoded requests and XML responses. This
turns the installed JSON model back into a Query one, adding the wire names (the xmlName traits of
the SQS Smithy model), so that botocore's own Query serializer and XML parser can be pointed at the
shim: `AWS_DATA_PATH=<dir> python3 ...` or `AWS_DATA_PATH=<dir> aws sqs ...`.

Usage: python3 sqs_query_model.py DIR
"""

import copy
import gzip
import json
import os
import shutil
import sys

import botocore

API_VERSION = '2012-11-05'

# Wire names of structure members, by member name, where they differ from the member name.
MEMBER_WIRE_NAMES = {
    'Attributes': 'Attribute',
    'tags': 'Tag',
    'Tags': 'Tag',
    'AttributeNames': 'AttributeName',
    'MessageSystemAttributeNames': 'AttributeName',
    'MessageAttributeNames': 'MessageAttributeName',
    'MessageAttributes': 'MessageAttribute',
    'MessageSystemAttributes': 'MessageSystemAttribute',
    'AWSAccountIds': 'AWSAccountId',
    'Actions': 'ActionName',
    'TagKeys': 'TagKey',
    'QueueUrls': 'QueueUrl',
    'queueUrls': 'QueueUrl',
    'Messages': 'Message',
    'Results': 'ListMessageMoveTasksResultEntry',
    'StringListValues': 'StringListValue',
    'BinaryListValues': 'BinaryListValue',
    'Failed': 'BatchResultErrorEntry',
}
# Batch entries are named after their entry shape, e.g. SendMessageBatchRequestEntry.
ENTRY_LISTS = {'Entries', 'Successful'}
# Legacy Query codes of the errors the tests expect by class.
QUERY_ERROR_CODES = {
    'QueueDoesNotExist': 'AWS.SimpleQueueService.NonExistentQueue',
    'BatchEntryIdsNotDistinct': 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
}


def query_model(model):
    model = copy.deepcopy(model)
    metadata = model['metadata']
    metadata['protocol'] = 'query'
    metadata['protocols'] = ['query']
    metadata['xmlNamespace'] = 'http://queue.amazonaws.com/doc/%s/' % API_VERSION
    for name, operation in model['operations'].items():
        if 'output' in operation:
            operation['output']['resultWrapper'] = name + 'Result'
    shapes = model['shapes']
    for name, shape in shapes.items():
        if shape['type'] == 'map':
            shape['key']['locationName'] = 'Key' if name == 'TagMap' else 'Name'
            shape['value']['locationName'] = 'Value'
        elif shape['type'] == 'structure':
            for member_name, member in shape['members'].items():
                if member_name in ENTRY_LISTS:
                    member['locationName'] = shapes[member['shape']]['member']['shape']
                elif member_name in MEMBER_WIRE_NAMES:
                    member['locationName'] = MEMBER_WIRE_NAMES[member_name]
                if member_name in ('StringListValues', 'BinaryListValues'):
                    member['flattened'] = True
    for name, code in QUERY_ERROR_CODES.items():
        shapes[name]['error'] = {'code': code, 'httpStatusCode': 400, 'senderFault': True}
    return model


def write_data_dir(directory):
    source = os.path.join(os.path.dirname(botocore.__file__), 'data', 'sqs', API_VERSION)
    target = os.path.join(directory, 'sqs', API_VERSION)
    os.makedirs(target, exist_ok=True)
    with gzip.open(os.path.join(source, 'service-2.json.gz'), 'rt') as f:
        model = json.load(f)
    with open(os.path.join(target, 'service-2.json'), 'w') as f:
        json.dump(query_model(model), f)
    shutil.copy(os.path.join(source, 'endpoint-rule-set-1.json.gz'), target)


if __name__ == '__main__':
    write_data_dir(sys.argv[1])
