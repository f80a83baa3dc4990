# The MLflow image ships mlflow alone. The team server also needs Flask-WTF (the basic-auth
# app), psycopg2 (the PostgreSQL stores) and boto3 (the S3 artifact proxy to MinIO).
# Versions are the ones requirements.lock pins for the local stack (devtools.teamstack).
FROM ghcr.io/mlflow/mlflow:v3.17.2

RUN pip install --no-cache-dir \
        "mlflow[auth]==3.17.2" \
        Flask-WTF==1.3.0 \
        psycopg2-binary==2.9.13 \
        boto3==1.43.117 \
        botocore==1.43.117
